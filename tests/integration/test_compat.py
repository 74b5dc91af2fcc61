"""Endpoint compatibility report: the probes against the fake endpoint's personalities
(served in-process under ``http://fake.invalid/<personality>/v1``), against a deliberately
quirky server (httpx MockTransport), and the suggested settings derived from them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chat.compat import (
    DIFFERENT,
    INCONCLUSIVE,
    PROBE_KEYS,
    SUPPORTED,
    UNSUPPORTED,
    run_check,
    suggested_changes,
)
from chat.compat.probes import PNG_DATA_URL
from chat.fake_upstream import PERSONALITIES
from chat.upstream import Endpoint, aclose_client, fake_app, set_transport

U, D, X = UNSUPPORTED, DIFFERENT, INCONCLUSIVE
RESPONSES_KEYS = [k for k in PROBE_KEYS if k.startswith("responses")]

# What each personality of the fake must yield: every probe is "supported" but these.
EXPECTED: dict[str, dict[str, str]] = {
    "full": {},
    "default-model": {},  # answers without `model` too; the report always names one
    "no-stream-options": {"stream_usage": U},
    "max-completion-tokens": {"max_tokens": U},
    "no-tools": {
        "responses_tools_auto": U,
        "responses_tools_required": U,
        "tools_auto": U,
        "tools_required": U,
        "tools_parallel": U,
        "tool_choice_named": U,
        "parallel_false": U,
        "tool_stream": U,
    },
    "plain-errors": {"error_shape": D},
    "no-images": {"image": U},
    "reasoning": {"max_tokens": U, "logprobs": U, "system_role": U},
    "system-only": {"developer_role": U},
    "tool-index-missing": {"tool_stream": D},
    "tool-index-reused": {"tool_stream": D},
    "no-responses": dict.fromkeys(RESPONSES_KEYS, U),
    "responses-stateless": {"responses_chain": U, "responses_store": U},
    "responses-ignore-store": {"responses_chain": U, "responses_store": U},
    "responses-no-sequence": {"responses_stream": D},
}

# The settings each personality's report suggests for a profile with default quirks.
SUGGESTED: dict[str, dict[str, Any]] = {
    "full": {},
    "default-model": {},
    "no-stream-options": {"include_usage": False},
    "max-completion-tokens": {"max_tokens_field": "max_completion_tokens"},
    "no-tools": {},
    "plain-errors": {},
    "no-images": {},
    "reasoning": {
        "max_tokens_field": "max_completion_tokens",
        "system_role": "developer",
        "drop_params": ["logprobs", "top_logprobs"],
    },
    "system-only": {},
    "tool-index-missing": {},
    "tool-index-reused": {},
    "no-responses": {"responses": False},
    "responses-stateless": {},
    "responses-ignore-store": {},
    "responses-no-sequence": {},
}


@pytest.fixture(autouse=True)
async def _clean_transport() -> AsyncIterator[None]:
    yield
    await aclose_client()
    set_transport(None)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["key"]: r["status"] for r in report["results"]}


def by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in report["results"]}


def test_every_personality_has_an_expectation():
    assert set(EXPECTED) == set(PERSONALITIES) == set(SUGGESTED)


@pytest.mark.parametrize("personality", sorted(EXPECTED))
async def test_each_personality_yields_its_report(personality):
    endpoint = Endpoint(f"http://fake.invalid/{personality}/v1", api_key="sk-compat-secret-1")
    report = await run_check(endpoint, "demo-fast")
    expected = {key: EXPECTED[personality].get(key, SUPPORTED) for key in PROBE_KEYS}
    assert statuses(report) == expected
    assert [r["key"] for r in report["results"]] == list(PROBE_KEYS)
    assert report["model"] == "demo-fast"
    for row in report["results"]:
        assert row["summary"] and row["ms"] is not None and row["ms"] >= 0
        assert row["sent"], row["key"]
        if row["status"] == UNSUPPORTED:
            # The provider's own words are the evidence.
            # (404: the Responses API's route, or a response, that is not there)
            assert row["http_status"] in (400, 404) and row["error"]["message"]
            assert row["error"]["message"][:30] in row["summary"]
    assert "sk-compat-secret-1" not in json.dumps(report)
    changes = suggested_changes(report["results"], {})
    assert {c["name"]: c["new"] for c in changes} == SUGGESTED[personality]


async def test_the_token_limit_field_follows_what_the_endpoint_accepts():
    reasoning = await run_check(Endpoint("http://fake.invalid/reasoning/v1"), "demo-fast")
    full = await run_check(Endpoint("http://fake.invalid/full/v1"), "demo-fast")
    assert reasoning["limit_field"] == "max_completion_tokens"
    assert full["limit_field"] == "max_tokens"
    sent = [r["json"] for r in fake_app().requests if r["path"] == "/v1/chat/completions"]
    # Every probe request is small: a limit of 16 tokens (a little more for JSON/tools).
    limited = [b for b in sent if b and b.get("model") == "demo-fast"]
    assert limited and all(
        0 < (b.get("max_tokens") or b.get("max_completion_tokens") or 0) <= 64
        for b in limited
        if "max_tokens" in b or "max_completion_tokens" in b
    )


async def test_evidence_of_the_full_personality():
    report = by_key(await run_check(Endpoint("http://fake.invalid/full/v1"), "demo-fast"))
    assert report["models"]["facts"]["models"] == ["demo", "demo-fast", "demo-slow"]
    assert "OpenAI" in report["models"]["summary"]
    assert json.loads(report["json_object"]["snippet"])  # the answer itself, valid JSON
    schema_answer = json.loads(report["json_schema"]["snippet"])
    assert set(schema_answer) == {"city", "population"}
    assert report["tools_parallel"]["facts"]["calls"] == 2
    assert report["tool_choice_named"]["summary"] == (
        "Called only get_time, 3 times; with tool_choice required the same request calls "
        "get_weather"
    )
    assert report["parallel_false"]["facts"]["calls"] == 1
    bodies = [r["json"] for r in fake_app().requests if r["json"]]
    assert any(b.get("parallel_tool_calls") is False for b in bodies)  # what the fake honoured
    assert report["tool_stream"]["facts"] == {
        "fragments": 8, "missing_index": 0, "reused": [], "calls": 2,
    }  # fmt: skip
    assert report["error_shape"]["http_status"] == 404
    assert report["error_shape"]["error"]["code"] == "model_not_found"
    assert "[DONE]" in report["stream"]["summary"]
    assert "stream_options" in report["stream_usage"]["sent"]
    assert "data:image/png;base64," in report["image"]["sent"]
    assert PNG_DATA_URL not in report["image"]["sent"]  # shortened in the evidence


async def test_the_fake_really_refuses_what_its_personality_lacks():
    """The report is only as honest as the fake: the probes' requests were refused by the
    server, not decided on the client."""
    fake_app().requests.clear()
    await run_check(Endpoint("http://fake.invalid/no-images/v1"), "demo-fast")
    paths = {r["path"] for r in fake_app().requests}
    stored = {p for p in paths if p.startswith("/v1/responses/")}  # GET /responses/{id}
    assert len(stored) == 1
    assert paths - stored == {
        "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/responses",
    }  # fmt: skip
    images = [
        r for r in fake_app().requests
        if r["json"] and "image_url" in json.dumps(r["json"].get("messages", ""))
    ]  # fmt: skip
    assert len(images) == 1


async def test_without_a_model_the_first_listed_one_is_checked():
    report = await run_check(Endpoint("http://fake.invalid/full/v1"), "")
    assert report["model"] == "demo"
    assert set(statuses(report).values()) == {SUPPORTED}


async def test_no_model_at_all_is_inconclusive_not_a_crash():
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": []})
        return httpx.Response(404, json={"error": {"message": "no such model", "type": "x"}})

    set_transport(httpx.MockTransport(handler))
    report = await run_check(Endpoint("http://empty.test/v1"), "")
    found = statuses(report)
    assert found["models"] == SUPPORTED and found["error_shape"] == SUPPORTED
    others = {k: v for k, v in found.items() if k not in ("models", "error_shape")}
    assert set(others.values()) == {INCONCLUSIVE}
    assert "No model to try" in by_key(report)["chat"]["summary"]


# --------------------------------------------------------------------------- a quirky server


def _chat_reply(body: dict[str, Any], text: str, *, usage: bool = False, n: int = 1) -> dict:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        for i in range(n)
    ]
    reply: dict[str, Any] = {"object": "chat.completion", "model": body["model"]}
    reply["choices"] = choices
    if usage:
        reply["usage"] = {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43}
    return reply


def _sse(*objs: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs)


def quirky(request: httpx.Request) -> httpx.Response:
    """A server that accepts almost everything and honours almost nothing."""
    path = request.url.path
    if path.endswith("/models"):
        return httpx.Response(200, json=["m1", "m2"])
    if not path.endswith("/chat/completions"):
        return httpx.Response(404, html="<html><body><h1>404 Not Found</h1></body></html>")
    body = json.loads(request.content)
    if body["model"] != "m1":
        return httpx.Response(400, json={"detail": f"Model {body['model']} not found"})
    if body.get("stream"):
        delta = {"choices": [{"index": 0, "delta": {"content": "Hello, world"}}]}
        last = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        # Usage rides on the last choice chunk, and no [DONE] is sent.
        stream = _sse(delta, last)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
    messages = body["messages"]
    if isinstance(messages[-1]["content"], list):
        return httpx.Response(400, json={"detail": "This model does not take images"})
    if body.get("tools"):
        return httpx.Response(200, json=_chat_reply(body, "I would rather not call tools."))
    if "response_format" in body:
        kind = body["response_format"]["type"]
        text = '{"city": "Paris"}' if kind == "json_schema" else 'Sure! {"answer": "hi"}'
        return httpx.Response(200, json=_chat_reply(body, text))
    if "seed" in body:
        return httpx.Response(200, json=_chat_reply(body, f"Waves {uuid.uuid4().hex[:6]}."))
    if "logprobs" in body:
        return httpx.Response(200, json={**_chat_reply(body, "OK"), "logprobs": None})
    if "stop" in body:
        return httpx.Response(200, json=_chat_reply(body, "6, 7, 8"))
    if messages[-1]["content"].startswith("Count"):  # the token-limit probes
        counting = " ".join(str(i) for i in range(1, 41))
        return httpx.Response(200, json=_chat_reply(body, counting, usage=True))
    return httpx.Response(200, json=_chat_reply(body, "OK"))  # one choice, no usage


async def test_a_quirky_server_behaves_differently_feature_by_feature():
    set_transport(httpx.MockTransport(quirky))
    report = await run_check(Endpoint("http://quirky.test/v1"), "m1")
    assert statuses(report) == {
        "models": D,
        "chat": D,
        "stream": D,
        "stream_usage": D,
        "max_tokens": D,
        "max_completion_tokens": D,
        "stop": D,
        "n": D,
        "seed": D,
        "logprobs": D,
        "json_object": D,
        "json_schema": D,
        # A text answer under tool_choice auto proves nothing; under required it does.
        "tools_auto": X,
        "tools_required": D,
        "tools_parallel": X,
        # A named tool_choice obliges a call; with no call there is nothing to count.
        "tool_choice_named": D,
        "parallel_false": X,
        "tool_stream": X,
        "system_role": SUPPORTED,
        "developer_role": SUPPORTED,
        "image": U,
        "completions": U,
        "error_shape": D,
        **dict.fromkeys(RESPONSES_KEYS, U),  # no such route on it
    }
    rows = by_key(report)
    said = {
        "chat": "no usage",
        "n": "1 choice for n=2",
        "models": "bare list",
        "stream": "no [DONE]",
        "stream_usage": "also carries choices",
        "max_tokens": "ignored: 40 tokens",
        "stop": "stop was ignored",
        "seed": "two different answers",
        "json_object": "not valid JSON",
        "json_schema": "not valid against the schema",
        "tools_required": "without a tool call",
    }
    for key, words in said.items():
        assert words in rows[key]["summary"], (key, rows[key]["summary"])
    assert "'population' is a required property" in rows["json_schema"]["summary"]
    assert rows["image"]["error"]["message"] == "This model does not take images"
    assert rows["completions"]["http_status"] == 404
    assert "not OpenAI's shape (detail)" in rows["error_shape"]["summary"]
