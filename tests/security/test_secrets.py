"""An endpoint's API key and extra header values never leave the server's memory: not in
any page, partial, socket frame, log record, saved message or database column.

The endpoint is a real socket server that checks it does receive them (so their absence
everywhere else means something)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.db import connection
from django.test import AsyncClient
from django.urls import reverse

from chat.models import EndpointProfile, Lane, Message, Preset
from tests.faults.rawserver import Conn, RawServer, Request, delta
from tests.faults.runner import connect, last_answer, send, until_done

from .test_authz_matrix import ROUTES, Side, build, enumerate_urls, slots_of

pytestmark = pytest.mark.django_db(transaction=True)

API_KEY = "sk-proj-Zq8SECRETKEYxv0Lw3Hn5Tg7Yb9Uc1Ie2Od4Jf6"
HEADER_NAME = "X-Org-Token"
HEADER_VALUE = "hdr-TOPSECRET-7f3a9c-value"
# The key's tail is shown as "…last4" by design; these parts must never be.
SECRETS = (API_KEY, API_KEY[:-4], "SECRETKEY", HEADER_VALUE, "TOPSECRET")
SAFE_POSTS = {
    "chat:conversation_settings",
    "chat:endpoint_test",
    "chat:endpoint_models",
    "chat:params_save",
    "chat:draft_code",
    "chat:message_choose",
}


async def honest(req: Request, conn: Conn) -> bool:
    """An endpoint that checks the credentials and answers normally (or fails plainly)."""
    assert req.headers.get("authorization") == f"Bearer {API_KEY}", req.headers
    assert req.headers.get(HEADER_NAME.lower()) == HEADER_VALUE
    if req.path.endswith("/models"):
        await conn.json(200, {"object": "list", "data": [{"id": "m1"}, {"id": "m2"}]})
        return True
    body = req.json or {}
    prompt = req.last_user_text()
    if "PLAIN500" in prompt:
        await conn.respond(500, "upstream exploded", {"Content-Type": "text/plain"})
        return True
    if not body.get("stream"):
        choice = {"index": 0, "message": {"role": "assistant", "content": "OK"}}
        await conn.json(200, {"choices": [{**choice, "finish_reason": "stop"}]})
        return True
    await conn.sse_head()
    for word in ("Nothing ", "secret ", "here"):
        await conn.sse(delta(word))
    await conn.sse(delta("", "stop"))
    await conn.sse("[DONE]")
    await conn.end()
    return True


async def echoing(req: Request, conn: Conn) -> bool:
    """An endpoint whose errors repeat the request's credentials back (some do)."""
    auth = req.headers.get("authorization", "")
    org = req.headers.get(HEADER_NAME.lower(), "")
    prompt = req.last_user_text()
    if "MIDSTREAM" in prompt:
        await conn.sse_head()
        await conn.sse(delta("Partial "))
        await conn.sse({"error": {"message": f"Key {auth[7:]} revoked (org {org})"}})
        await conn.end()
        return True
    if "HTML" in prompt:
        page = f"<html><body><h1>Forbidden</h1><p>{auth} / {org}</p></body></html>"
        await conn.respond(403, page, {"Content-Type": "text/html"})
        return True
    message = f"Incorrect API key provided: {auth[7:]}. Header {HEADER_NAME}: {org}"
    error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
    await conn.json(401, {"error": error})
    return True


def _split(text: str, *cuts: int) -> list[str]:
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(edges, edges[1:], strict=False)]


async def echoing_answers(req: Request, conn: Conn) -> bool:
    """An endpoint whose answers (text, reasoning, tool-call arguments) repeat the
    credentials, each split across several deltas."""
    auth = req.headers.get("authorization", "")[7:]
    org = req.headers.get(HEADER_NAME.lower(), "")
    if req.path.endswith("/models"):
        await conn.json(200, {"object": "list", "data": [{"id": "m1"}]})
        return True
    if not (req.json or {}).get("stream"):
        choice = {"index": 0, "message": {"role": "assistant", "content": f"OK {auth}"}}
        await conn.json(200, {"choices": [{**choice, "finish_reason": "stop"}]})
        return True

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    await conn.sse_head()
    for part in _split(f"Thinking about {org} and {auth}.", 18, 30, 50):
        await conn.sse(chunk({"reasoning_content": part}))
    for part in _split(f"Your key is {auth}, your org token is {org}. Done.", 14, 20, 41, 69):
        await conn.sse(delta(part))
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "save"}}
    await conn.sse(chunk({"tool_calls": [{**head, "function": {"name": "save", "arguments": ""}}]}))
    for part in _split(json.dumps({"key": auth, "org": org}), 12, 25, 40):
        await conn.sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
    await conn.sse(chunk({}, "tool_calls"))
    await conn.sse("[DONE]")
    await conn.end()
    return True


class Capture:
    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def response(self, where: str, response: Any) -> None:
        self.add(where, body_of(response).decode(errors="replace"))
        self.add(where + " headers", dict(response.headers))

    def leaks(self) -> list[str]:
        return [f"{where}: {s!r}" for where, text in self.texts for s in SECRETS if s in text]


async def read_streamed(response: Any) -> Any:
    """Read a streamed response (the exports) so its bytes can be scanned too."""
    if getattr(response, "streaming", False):
        chunks = [c async for c in response.streaming_content]
        response._body_of = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    return response


def body_of(response: Any) -> bytes:
    return getattr(response, "_body_of", None) or response.content


@pytest_asyncio.fixture
async def server() -> AsyncIterator[RawServer]:
    server = await RawServer(handler=honest).start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def web(owner) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(owner)
    return client


def profile_form(base_url: str) -> dict[str, str]:
    return {
        "name": "Secretive",
        "base_url": base_url,
        "api_key": API_KEY,
        "default_model": "m1",
        "models_text": "m1",
        "extra_headers": f"{HEADER_NAME}: {HEADER_VALUE}",
        "connect_timeout": "5",
        "first_byte_timeout": "5",
        "idle_timeout": "5",
    }


async def create_profile(web: AsyncClient, base_url: str, capture: Capture) -> EndpointProfile:
    """Through the form, as a user would."""
    response = await web.post(reverse("chat:endpoint_new"), profile_form(base_url))
    assert response.status_code == 302, response.content[:500]
    capture.response("endpoint_new", response)
    profile = await EndpointProfile.objects.aget(name="Secretive")
    assert profile.api_key == API_KEY and profile.extra_headers == {HEADER_NAME: HEADER_VALUE}
    return profile


async def turn(owner, conversation, text: str, capture: Capture) -> Message:
    comm = await connect(owner, conversation)
    await send(comm, text)
    for frame in await until_done(comm):
        capture.add(f"socket frame ({text})", frame)
    await comm.disconnect()
    return await last_answer(conversation)


@database_sync_to_async
def make_conversation(owner, profile):
    from chat import conversations

    return conversations.conversation_create(owner=owner, profile=profile, model="m1")


@database_sync_to_async
def raw_database_dump() -> list[tuple[str, str]]:
    """Every row of every table, read with plain SQL (no model field decrypts anything)."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows += [(table, repr(row)) for row in cursor.fetchall()]
    return rows


async def crawl(web: AsyncClient, side: Side, capture: Capture) -> int:
    """Every page and partial of the project with the owner's objects: GET, and POST for
    the ones that only read or save settings."""
    count = 0
    for url in enumerate_urls():
        if url.name not in ROUTES:
            continue
        spec = ROUTES[url.name]
        slots = slots_of(url, spec)
        path, post, query = build(url, spec, slots, (side,) * len(slots))
        response = await read_streamed(await web.get(path, query))
        capture.response(f"GET {path}", response)
        count += 1
        if url.name in SAFE_POSTS:
            response = await read_streamed(await web.post(path, post))
            capture.response(f"POST {path}", response)
            count += 1
    return count


async def test_secrets_never_leak(owner, web, server, caplog):
    caplog.set_level(logging.DEBUG)
    capture = Capture()
    profile = await create_profile(web, server.url, capture)

    conversation = await make_conversation(owner, profile)
    answer = await turn(owner, conversation, "Hello there", capture)
    assert answer.status == "complete" and answer.content == "Nothing secret here"
    failed = await turn(owner, conversation, "PLAIN500 please", capture)
    assert failed.status == "error" and failed.error["status"] == 500
    preset = await Preset.objects.acreate(owner=owner, name="p", params={})
    lane = await Lane.objects.aget(conversation=conversation)
    side = Side(owner, profile, conversation, answer, preset, lane=lane)
    crawled = await crawl(web, side, capture)
    assert crawled >= 15

    for name in ("chat:endpoint_models", "chat:endpoint_test"):
        response = await web.post(reverse(name, args=[profile.pk]))
        assert response.status_code == 200 and "✓".encode() in response.content
        capture.response(name, response)
    # The endpoint did get the secrets: their absence below is meaningful.
    assert len(server.requests) >= 6

    for record in caplog.records:
        capture.add(f"log {record.name}", record.getMessage())
        capture.add(f"log {record.name} args", record.args)
        if record.exc_info:
            capture.add(
                f"log {record.name} exc", logging.Formatter().formatException(record.exc_info)
            )
    async for message in Message.objects.all():
        capture.add(f"message {message.pk}", json.dumps(message.request_body))
        capture.add(f"message {message.pk} error", json.dumps(message.error))
        capture.add(f"message {message.pk}", message.content + message.rendered)
    for table, row in await raw_database_dump():
        capture.add(f"table {table}", row)
    assert capture.leaks() == []
    assert any("Nothing secret here" in text for _, text in capture.texts), "capture works"


async def test_secrets_echoed_back_by_the_endpoint_are_redacted(owner, web, server, caplog):
    caplog.set_level(logging.DEBUG)
    capture = Capture()
    server.handler = echoing
    profile = await create_profile(web, server.url, capture)
    conversation = await make_conversation(owner, profile)
    for text in ("Hello", "MIDSTREAM", "HTML"):
        answer = await turn(owner, conversation, text, capture)
        assert answer.status == "error"
        capture.add("error", json.dumps(answer.error))
    for name in ("chat:endpoint_models", "chat:endpoint_test"):
        capture.response(name, await web.post(reverse(name, args=[profile.pk])))
    response = await web.get(reverse("chat:conversation", args=[conversation.pk]))
    capture.response("conversation page", response)
    for record in caplog.records:
        capture.add(f"log {record.name}", record.getMessage())
    for table, row in await raw_database_dump():
        capture.add(f"table {table}", row)
    assert capture.leaks() == []


async def echoed(owner, web, server, handler):
    """A turn on an endpoint that echoes its secrets (``handler``): what was captured,
    the endpoint, the conversation, its answer."""
    capture = Capture()
    server.handler = handler
    profile = await create_profile(web, server.url, capture)
    conversation = await make_conversation(owner, profile)
    answer = await turn(owner, conversation, "Repeat my secrets", capture)
    return capture, profile, conversation, answer


async def test_secrets_echoed_in_answers_are_redacted_even_split_across_deltas(owner, web, server):
    """Text, reasoning and tool-call arguments, streamed (every frame), saved (every
    column), on the page and in both exports; and the endpoint test's answer."""
    capture, profile, conversation, answer = await echoed(owner, web, server, echoing_answers)
    assert answer.status == "complete", answer.error
    assert answer.content == ("Your key is [redacted], your org token is [redacted]. Done.")
    assert answer.reasoning == "Thinking about [redacted] and [redacted]."
    arguments = json.loads(answer.tool_calls[0]["function"]["arguments"])
    assert arguments == {"key": "[redacted]", "org": "[redacted]"}
    streamed = "".join(text for where, text in capture.texts if where.startswith("socket"))
    assert "[redacted]" in streamed
    for name in ("chat:conversation", "chat:export_json", "chat:export_markdown"):
        response = await read_streamed(await web.get(reverse(name, args=[conversation.pk])))
        assert response.status_code == 200
        assert b"[redacted]" in body_of(response)
        capture.response(name, response)
    response = await web.post(reverse("chat:endpoint_test", args=[profile.pk]))
    assert b"OK [redacted]" in response.content
    capture.response("endpoint_test", response)
    for table, row in await raw_database_dump():
        capture.add(f"table {table}", row)
    assert capture.leaks() == []


async def test_a_form_with_errors_does_not_send_the_secrets_back(web, server):
    capture = Capture()
    profile = await create_profile(web, server.url, capture)
    assert capture.leaks() == []
    for name, args in (("chat:endpoint_new", []), ("chat:endpoint_edit", [profile.pk])):
        form = {**profile_form(server.url), "base_url": "ftp://not-http"}
        response = await web.post(reverse(name, args=args), form)
        assert response.status_code == 200 and b"field-error" in response.content
        capture.response(name, response)
    assert capture.leaks() == []


async def echoing_with_logprobs(req: Request, conn: Conn) -> bool:
    """An endpoint that answers with the credentials, one token a delta with its logprobs
    (token, bytes, alternatives); the key split across several tokens, the header value
    inside one with text around it."""
    auth = req.headers.get("authorization", "")[7:]
    org = req.headers.get(HEADER_NAME.lower(), "")
    text = f"Key: {auth}, org:{org}! Done."
    cuts = [3, 5, 9, 14, 20, 33, 40, 41, 47, 47 + len(org) + 4]
    await conn.sse_head()
    for token in _split(text, *cuts):

        def entry(tok: str, logprob: float) -> dict[str, Any]:
            return {"token": tok, "logprob": logprob, "bytes": list(tok.encode())}

        top = [entry(token, -0.1), entry(token[:2] + "x", -3.0)]
        logprobs = {"content": [{**entry(token, -0.1), "top_logprobs": top}]}
        chunk = delta(token)
        chunk["choices"][0]["logprobs"] = logprobs
        await conn.sse(chunk)
    await conn.sse(delta("", "stop"))
    await conn.sse("[DONE]")
    await conn.end()
    return True


def _untagged(text: str) -> str:
    """The page's token spans (<span class="lp ..." title="...">tok</span>) joined up."""
    import re

    return re.sub(r"<span class=\"lp [^>]*>|</span>", "", text)


def _logprob_sequences(value: Any) -> list[str]:
    """Every list of logprob tokens in a document joined up: the saved / exported shape
    ({"token": ...} lists), the raw lines' (logprobs.content) and their bytes."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("logprobs", "content") and isinstance(item, list):
                entries = [e for e in item if isinstance(e, dict) and "token" in e]
                if entries:
                    found.append("".join(e["token"] for e in entries))
                    found.append(bytes(b for e in entries for b in e.get("bytes") or []).decode())
            found += _logprob_sequences(item)
    elif isinstance(value, list):
        for item in value:
            found += _logprob_sequences(item)
    return found


async def test_secrets_echoed_in_logprob_tokens_are_redacted(owner, web, server):
    """The tokens spell the answer: saved, shown (Token probabilities), exported and kept
    in the raw response, they must not spell a secret either, nor their bytes."""
    capture, _, conversation, answer = await echoed(owner, web, server, echoing_with_logprobs)
    assert answer.status == "complete", answer.error
    assert answer.content == "Key: [redacted], org:[redacted]! Done."
    assert "".join(t["token"] for t in answer.logprobs) == answer.content
    assert len(answer.logprobs) == 11  # one entry per token, as received
    sequences = _logprob_sequences({"logprobs": answer.logprobs})
    for line in answer.raw_response:
        if line.startswith("{"):
            sequences += _logprob_sequences(json.loads(line))
    assert any("[redacted]" in s for s in sequences), sequences
    capture.add("logprob sequences", "\n".join(sequences))
    for name in ("chat:conversation", "chat:export_json", "chat:export_markdown"):
        response = await read_streamed(await web.get(reverse(name, args=[conversation.pk])))
        assert response.status_code == 200
        capture.response(name, response)
        if name == "chat:export_json":
            exported = json.loads(body_of(response))
            capture.add("exported sequences", "\n".join(_logprob_sequences(exported)))
    page = dict(capture.texts)["chat:conversation"]
    assert "Token probabilities" in page
    capture.texts = [(where, _untagged(text)) for where, text in capture.texts]
    for table, row in await raw_database_dump():
        capture.add(f"table {table}", row)
    assert capture.leaks() == []
