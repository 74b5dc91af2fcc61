"""Echoed secrets, route by route and place by place: an endpoint that repeats the API key
or an extra header's value in ANY field it sends back (not only the answer's text) gets
it shown nowhere.

Each route is one way an endpoint echoes (the chunk's model, a tool-call id, an error's
type/code/param, the finish reason, a JSON-escaped raw line, /models ids, compatibility
probe answers, a secret split across deltas...); for each, every place a string from the
endpoint can end up is read back and searched: the page, the socket frames, the
inspector, the code export, the JSON/Markdown exports, export all, the share page, the
compatibility report, the admin, every text/JSON column of every row, and the log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import AsyncClient
from django.urls import reverse

from chat.compat.runner import local_task
from chat.models import EndpointProfile, Lane, Message
from tests.faults.rawserver import Conn, Request, delta
from tests.faults.runner import last_answer

from .test_secrets import (
    API_KEY,
    HEADER_NAME,
    HEADER_VALUE,
    SECRETS,
    create_profile,
    make_conversation,
    raw_database_dump,
    read_streamed,
    server,  # noqa: F401  (fixture)
    turn,
    web,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


def chunk(delta_: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion.chunk",
        "model": "m1",
        **top,
        "choices": [{"index": 0, "delta": delta_, "finish_reason": finish}],
    }


def escaped(text: str) -> str:
    """``text`` as a JSON string with every character \\u-escaped: the same value, but
    no byte of it spells the secret."""
    return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'


async def finish(conn: Conn, reason: str = "stop") -> None:
    await conn.sse(chunk({}, reason))
    await conn.sse("[DONE]")
    await conn.end()


async def stream_route(route: str, key: str, org: str, conn: Conn) -> None:
    """A streamed answer that echoes the credentials the way ``route`` says."""
    if route == "http_error":
        error = {"message": f"bad {key}", "type": key, "code": org, "param": f"p {org}"}
        await conn.json(400, {"error": error})
        return
    await conn.sse_head()
    if route == "model_field":
        await conn.sse(chunk({"role": "assistant", "content": "Hello"}, model=key))
        await finish(conn)
    elif route == "tool_call_id":
        call = {"index": 0, "id": key, "type": "function",
                "function": {"name": "save", "arguments": "{}"}}  # fmt: skip
        await conn.sse(chunk({"tool_calls": [call]}))
        await finish(conn, "tool_calls")
    elif route == "tool_name_arguments":
        call = {"index": 0, "id": "call_1", "type": "function",
                "function": {"name": org, "arguments": json.dumps({"k": key})}}  # fmt: skip
        await conn.sse(chunk({"tool_calls": [call]}))
        await finish(conn, "tool_calls")
    elif route == "midstream_error":
        await conn.sse(delta("Partial "))
        error = {"message": f"revoked {org}", "type": key, "code": org, "param": key}
        await conn.sse({"error": error})
        await conn.end()
    elif route == "finish_reason":
        await conn.sse(delta("Hi"))
        await conn.sse(chunk({}, key))
        await conn.sse("[DONE]")
        await conn.end()
    elif route == "json_escaped_raw_line":
        line = json.dumps(chunk({"content": "@@"}, system_fingerprint="@@"))
        line = line.replace('"@@"', escaped(f"fp {org}"), 1).replace('"@@"', escaped(key))
        await conn.sse(line)
        await finish(conn)
    elif route == "split_across_deltas":
        await conn.sse(delta(f"Key {key[:11]}"))
        await conn.sse(delta(f"{key[11:]} and {org[:5]}"))
        await conn.sse(delta(f"{org[5:]}."))
        await finish(conn)
    elif route == "compat_probe_answers":
        await conn.sse(chunk({"content": f"OK {key}"}, model=key, system_fingerprint=org))
        await finish(conn)
    elif route == "responses_items":
        # The Responses API: the key split across typed text deltas, the header's value in
        # the response id, the key again as a reasoning item's encrypted content.
        await conn.sse({"type": "response.created", "response": {"id": f"resp_{org}"}})
        for part in (f"Key {key[:11]}", f"{key[11:]} end"):
            await conn.sse({"type": "response.output_text.delta", "item_id": "m", "delta": part})
        message = {"id": "m", "type": "message", "role": "assistant",
                   "content": [{"type": "output_text", "text": f"Key {key} end"}]}  # fmt: skip
        reasoning = {"id": "rs", "type": "reasoning", "summary": [], "encrypted_content": key}
        usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
        await conn.sse({"type": "response.completed", "response": {
            "id": f"resp_{org}", "status": "completed", "output": [reasoning, message],
            "usage": usage}})  # fmt: skip
        await conn.end()
    else:  # models_ids: an ordinary answer
        await conn.sse(delta("Plain answer"))
        await finish(conn)


def whole_answer(route: str, key: str, org: str) -> dict[str, Any]:
    """A non-streamed answer (the endpoint test, the compatibility probes)."""
    if route != "compat_probe_answers":
        message = {"role": "assistant", "content": "OK"}
        return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    call = {"id": key, "type": "function",
            "function": {"name": org, "arguments": json.dumps({"k": key})}}  # fmt: skip
    message = {"role": "assistant", "content": f"OK {key} {org}", "tool_calls": [call]}
    return {"id": key, "model": key, "system_fingerprint": org,
            "choices": [{"index": 0, "message": message, "finish_reason": org}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}  # fmt: skip


def echo(route: str):
    async def handler(req: Request, conn: Conn) -> bool:
        key = req.headers.get("authorization", "")[7:]
        org = req.headers.get(HEADER_NAME.lower(), "")
        assert key == API_KEY and org == HEADER_VALUE  # the echo is of the real thing
        if req.path.endswith("/models"):
            ids = [key, f"m-{org}", "m1"] if route == "models_ids" else ["m1"]
            await conn.json(200, {"object": "list", "data": [{"id": i} for i in ids]})
        elif (req.json or {}).get("stream"):
            await stream_route(route, key, org, conn)
        else:
            await conn.json(200, whole_answer(route, key, org))
        return True

    return handler


ROUTES = [
    "model_field",
    "tool_call_id",
    "tool_name_arguments",
    "http_error",
    "midstream_error",
    "finish_reason",
    "json_escaped_raw_line",
    "models_ids",
    "compat_probe_answers",
    "split_across_deltas",
    "responses_items",
]
PLACES = [
    "page HTML",
    "socket frames",
    "inspector",
    "code export",
    "JSON export",
    "Markdown export",
    "export all",
    "share page",
    "compat report",
    "admin",
    "database columns",
    "server log",
]


class Places:
    """What each place showed, as text."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {place: [] for place in PLACES}

    def add(self, place: str, text: Any) -> None:
        self.seen[place].append(text if isinstance(text, str) else repr(text))

    async def get(self, place: str, client: AsyncClient, url: str, **kwargs: Any) -> str:
        response = await read_streamed(await client.get(url, **kwargs))
        assert response.status_code == 200, (place, url, response.status_code)
        body = getattr(response, "_body_of", None) or response.content
        text = body.decode(errors="replace")
        self.add(place, text)
        return text

    def hits(self) -> dict[str, int]:
        return {
            place: sum(text.count(s) for text in texts for s in SECRETS)
            for place, texts in self.seen.items()
        }


@pytest.mark.parametrize("route", ROUTES)
async def test_an_echoed_secret_is_shown_nowhere(route, owner, web, server, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    hits, answer, profile = await one_route(route, owner, web, server, caplog)
    assert hits == dict.fromkeys(PLACES, 0), f"hits by place: {hits}"
    assert_echoed(route, answer, profile)


async def one_route(route, owner, web, server, caplog) -> tuple[dict[str, int], Message, Any]:  # noqa: F811, E501
    places = Places()
    server.handler = echo(route)
    from .test_secrets import Capture

    capture = Capture()
    profile = await create_profile(web, server.url, capture)
    for where, text in capture.texts:
        places.add("page HTML", f"{where}: {text}")
    conversation = await make_conversation(owner, profile)
    if route == "model_field":
        # Requests may omit the model: the answer is then named by the endpoint's.
        profile.quirks = {**profile.quirks, "model_optional": True}
        await profile.asave(update_fields=["quirks"])
        await Lane.objects.filter(conversation=conversation).aupdate(model="")
    if route == "responses_items":
        # (the profile form posted without its "serves the Responses API" box ticked)
        profile.quirks = {**profile.quirks, "responses": True}
        await profile.asave(update_fields=["quirks"])
        await Lane.objects.filter(conversation=conversation).aupdate(api="responses")
    if route in ("models_ids", "compat_probe_answers"):
        await web.post(reverse("chat:endpoint_models", args=[profile.pk]))
        await places.get("page HTML", web, reverse("chat:endpoint_edit", args=[profile.pk]))
        options = reverse("chat:model_options")
        await places.get("page HTML", web, options, query_params={"profile": profile.pk})
        response = await web.post(reverse("chat:endpoint_test", args=[profile.pk]))
        places.add("page HTML", response.content.decode())
    await profile.arefresh_from_db()
    if route == "compat_probe_answers":
        await web.post(reverse("chat:compat_start", args=[profile.pk]), {"model": "m1"})
        task = local_task(profile.pk)
        assert task is not None
        await task  # the report is written when the task ends
        await profile.arefresh_from_db()
        assert profile.capabilities.get("results"), "the check ran"

    capture = Capture()
    answer = await turn(owner, conversation, f"Echo please ({route})", capture)
    for _, text in capture.texts:
        places.add("socket frames", text)
    answer = await last_answer(conversation)

    c, m = conversation.pk, answer.pk
    await places.get("page HTML", web, reverse("chat:conversation", args=[c]))
    await places.get("inspector", web, reverse("chat:message_inspect", args=[c, m]))
    await places.get("code export", web, reverse("chat:message_code", args=[c, m]))
    await places.get("JSON export", web, reverse("chat:export_json", args=[c]))
    await places.get("Markdown export", web, reverse("chat:export_markdown", args=[c]))
    await places.get("export all", web, reverse("chat:export_all"))
    await web.post(reverse("chat:share", args=[c]), headers=HTMX)
    await conversation.arefresh_from_db()
    anonymous = AsyncClient()
    shared = reverse("chat:shared", args=[conversation.share_token])
    await places.get("share page", anonymous, shared)
    await places.get("compat report", web, reverse("chat:compat_panel", args=[profile.pk]))
    admin = await admin_client(owner)
    for url in (
        reverse("admin:chat_message_changelist"),
        reverse("admin:chat_message_change", args=[m]),
        reverse("admin:chat_endpointprofile_change", args=[profile.pk]),
        reverse("admin:chat_conversation_change", args=[c]),
    ):
        await places.get("admin", admin, url)
    for table, row in await raw_database_dump():
        places.add("database columns", f"{table}: {row}")
    for record in caplog.records:
        places.add("server log", record.getMessage())
        if record.exc_info:
            places.add("server log", logging.Formatter().formatException(record.exc_info))
    assert all(places.seen.values()), "every place was read"
    await profile.arefresh_from_db()
    return places.hits(), answer, profile


async def admin_client(owner) -> AsyncClient:
    from django.contrib.auth import get_user_model

    user = await get_user_model().objects.filter(username="echo-admin").afirst()
    if user is None:
        user = await get_user_model().objects.acreate_superuser("echo-admin", password="x" * 20)
    client = AsyncClient()
    await client.aforce_login(user)
    return client


def assert_echoed(route: str, answer: Message, profile: EndpointProfile) -> None:
    """The route did echo (so the absence of the secrets means something): the field it
    echoed in holds [redacted] (or, for /models, the id is gone)."""
    calls = answer.tool_calls or []
    error = answer.error or {}
    expected = {
        "model_field": lambda: answer.model == "[redacted]",
        "tool_call_id": lambda: calls[0]["id"] == "[redacted]",
        "tool_name_arguments": lambda: calls[0]["function"]["name"] == "[redacted]"
        and "[redacted]" in calls[0]["function"]["arguments"],
        "http_error": lambda: error.get("type") == "[redacted]" and error.get("status") == 400
        and error.get("param") == "p [redacted]",
        "midstream_error": lambda: error.get("type") == "[redacted]"
        and error.get("code") == "[redacted]" and answer.content == "Partial ",
        "finish_reason": lambda: answer.finish_reason == "[redacted]",
        "json_escaped_raw_line": lambda: answer.content == "[redacted]"
        and any("fp [redacted]" in line for line in answer.raw_response),
        "models_ids": lambda: profile.models_cache == ["m1"],
        "compat_probe_answers": lambda: "[redacted]" in json.dumps(profile.capabilities),
        "split_across_deltas": lambda: answer.content == "Key [redacted] and [redacted].",
        "responses_items": lambda: answer.content == "Key [redacted] end"
        and answer.response_id == "resp_[redacted]"
        and answer.output_items[0]["encrypted_content"] == "[redacted]",
    }  # fmt: skip
    assert expected[route](), (route, answer.model, answer.content, calls, error)
