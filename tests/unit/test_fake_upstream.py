"""The fake OpenAI-compatible server, driven through the client's in-process transport."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat import upstream as up
from chat.fake_upstream import FakeConfig, FakeUpstream, tokenize
from chat.upstream.asgi_transport import StreamingASGITransport

FAKE = up.Endpoint("http://fake.invalid/v1", api_key="sk-test")
PERSONALITY = up.Endpoint("http://personality.test/v1")  # whatever set_transport serves


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await up.aclose_client()
    up.set_transport(None)


def chat(prompt: str = "Tell me about rivers", model: str = "demo-fast", **extra: Any) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    return {**body, **extra}


async def collect(
    body: dict[str, Any], endpoint: up.Endpoint = FAKE, path: str = "chat/completions"
) -> list[Any]:
    async with contextlib.aclosing(up.stream_chat(endpoint, body, path=path)) as events:
        return [event async for event in events]


def text(events: list[Any], choice: int = 0) -> str:
    return "".join(e.text for e in events if isinstance(e, up.TextDelta) and e.choice == choice)


def deltas(events: list[Any]) -> list[up.TextDelta]:
    return [e for e in events if isinstance(e, up.TextDelta)]


async def raw_lines(body: dict[str, Any], path: str = "chat/completions") -> list[str]:
    """The non-empty lines of the event stream as sent."""
    url = f"http://fake.invalid/v1/{path}"
    async with up.get_client().stream("POST", url, json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line async for line in response.aiter_lines() if line]


def personality(**config: Any) -> up.Endpoint:
    """An endpoint served by a fake with its own FakeConfig."""
    up.set_transport(StreamingASGITransport(FakeUpstream(FakeConfig(**config))))
    return up.Endpoint("http://personality.test/v1")


# --------------------------------------------------------------------------- replies


async def test_same_prompt_same_reply_and_different_prompt_different_reply() -> None:
    first = text(await collect(chat("How do tides work?")))
    again = text(await collect(chat("How do tides work?")))
    other = text(await collect(chat("What is a monad?")))
    assert first == again
    assert first != other
    assert "How do tides work?" in first  # the opening sentence quotes the prompt
    assert 60 <= len(tokenize(first)) <= 130


async def test_seed_changes_the_reply() -> None:
    a = text(await collect(chat("Same words", seed=1)))
    b = text(await collect(chat("Same words", seed=2)))
    assert a != b


async def test_streamed_pieces_are_tokens_and_match_the_non_streamed_reply() -> None:
    events = await collect(chat("Explain caching"))
    pieces = [e.text for e in deltas(events)]
    assert len(pieces) > 20
    assert pieces == tokenize("".join(pieces))
    completion = await up.chat_once(FAKE, chat("Explain caching", stream=False))
    assert completion["choices"][0]["message"]["content"] == "".join(pieces)
    assert events[-1] == up.Finish("stop")


async def test_request_is_logged() -> None:
    body = chat("log me")
    await collect(body)
    logged = up.fake_app().requests[-1]
    assert logged["method"] == "POST"
    assert logged["path"] == "/v1/chat/completions"
    assert logged["json"] == body
    assert logged["headers"]["authorization"] == "Bearer sk-test"


async def test_content_parts_are_read_as_the_prompt() -> None:
    parts = [{"type": "text", "text": "Explain"}, {"type": "image_url", "image_url": {}}]
    as_parts = await collect(chat(parts))  # type: ignore[arg-type]
    as_string = await collect(chat("Explain"))
    assert text(as_parts) == text(as_string)


async def test_max_tokens_stops_with_length() -> None:
    events = await collect(chat(max_tokens=5))
    assert len(deltas(events)) == 5
    assert events[-1] == up.Finish("length")
    events = await collect(chat(max_completion_tokens=3))
    assert len(deltas(events)) == 3
    assert events[-1] == up.Finish("length")


async def test_stop_sequence_cuts_before_it() -> None:
    full = text(await collect(chat()))
    stop = full.split()[6]
    events = await collect(chat(stop=["never-there", stop]))
    assert text(events) == full[: full.index(stop)]
    assert stop not in text(events)
    assert events[-1] == up.Finish("stop")


async def test_n_choices_are_interleaved_and_differ() -> None:
    events = await collect(chat(n=2))
    indices = [e.choice for e in deltas(events)]
    assert indices[:4] == [0, 1, 0, 1]
    assert text(events, 0) and text(events, 1)
    assert text(events, 0) != text(events, 1)
    finishes = [e for e in events if isinstance(e, up.Finish)]
    assert sorted(f.choice for f in finishes) == [0, 1]


async def test_include_usage_chunk_shape() -> None:
    lines = await raw_lines(chat(stream_options={"include_usage": True}))
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["usage"] is None for c in chunks[:-1])
    final = chunks[-1]
    assert final["choices"] == []
    usage = final["usage"]
    assert usage["completion_tokens"] == len(chunks) - 3  # minus role, finish and usage chunks
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_no_usage_without_include_usage() -> None:
    lines = await raw_lines(chat())
    assert not any('"usage"' in line for line in lines)
    assert not any(isinstance(e, up.Usage) for e in await collect(chat()))


async def test_usage_event_through_the_client() -> None:
    events = await collect(chat(stream_options={"include_usage": True}))
    usage = events[-1]
    assert isinstance(usage, up.Usage)
    assert usage.completion_tokens == len(deltas(events))
    assert usage.prompt_tokens == 4


async def test_non_stream_shape() -> None:
    completion = await up.chat_once(FAKE, chat(stream=False, n=2))
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert [c["index"] for c in completion["choices"]] == [0, 1]
    message = completion["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert completion["choices"][0]["finish_reason"] == "stop"
    usage = completion["usage"]
    expected = sum(len(tokenize(c["message"]["content"])) for c in completion["choices"])
    assert usage["completion_tokens"] == expected


class Recorded:
    """What the fake served: each reply's schedule (seconds after the request, bytes,
    counts as a token), read from the fake's own plan rather than timed on the wire."""

    def __init__(self) -> None:
        self.replies: list[tuple[float, list[tuple[float, bytes, bool]]]] = []

    def wrap(self, make: Any) -> Any:
        def recording(*args: Any, **kwargs: Any) -> Any:
            reply = make(*args, **kwargs)
            steps: list[tuple[float, bytes, bool]] = []
            self.replies.append((reply.delay, steps))
            if reply.stream is not None:
                reply.stream = _tee(reply.stream, steps)
            return reply

        return recording


def _tee(stream: Any, into: list[Any]) -> Any:
    for step in stream:
        into.append(step)
        yield step


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    from chat.fake_upstream import server

    recorded = Recorded()
    monkeypatch.setattr(server, "stream_reply", recorded.wrap(server.stream_reply))
    monkeypatch.setattr(server, "full_reply", recorded.wrap(server.full_reply))
    return recorded


def gated(app: Any, *, after_tokens: int, gate: asyncio.Event) -> Any:
    """``app`` whose body sends past the first ``after_tokens`` tokens wait for ``gate``:
    the test decides when the stream may go on, so nothing hangs on how fast it runs."""

    async def call(scope: Any, receive: Any, send: Any) -> None:
        sent = 0

        async def gated_send(message: dict[str, Any]) -> None:
            nonlocal sent
            body = message.get("body", b"")
            if b'"content":"' in body and b'"content":""' not in body:
                if sent >= after_tokens:
                    await gate.wait()
                sent += 1
            await send(message)

        await app(scope, receive, gated_send)

    return call


async def test_streaming_is_live_and_paced(served: Recorded) -> None:
    # Paced: the fake plans the first token at ttft, then one every 1/tps seconds, and
    # never serves one early (a loaded machine can only make them later).
    # Live: the first delta reaches the client while the fake is still holding the
    # second one; a transport that buffered the reply would never deliver it.
    first_seen = asyncio.Event()
    up.set_transport(StreamingASGITransport(gated(FakeUpstream(), after_tokens=1, gate=first_seen)))
    body = scripted({"tokens": 10, "tps": 20, "ttft_ms": 100}, model="demo")
    loop = asyncio.get_running_loop()
    started = loop.time()
    arrivals = []
    async with asyncio.timeout(60):  # a safety net only: a buffered reply never arrives
        async with contextlib.aclosing(up.stream_chat(PERSONALITY, body)) as events:
            async for event in events:
                if isinstance(event, up.TextDelta):
                    arrivals.append(loop.time() - started)
                    first_seen.set()
    assert len(arrivals) == 10
    [(_, steps)] = served.replies
    planned = [at for at, _, is_token in steps if is_token]
    assert planned == pytest.approx([0.1 + i / 20 for i in range(10)])
    assert arrivals[0] >= 0.1 - 0.01
    assert arrivals[-1] >= planned[-1] - 0.01


async def test_demo_fast_has_no_delay(served: Recorded) -> None:
    # No pause is planned anywhere in the reply (the fake sleeps only for a positive
    # delay), whatever the wall clock says on a busy machine.
    await collect(chat(model="demo-fast"))
    [(delay, steps)] = served.replies
    assert delay == 0 and steps
    assert {at for at, _, _ in steps} == {0.0}


# --------------------------------------------------------------------------- @fake


def scripted(directives: dict[str, Any], prompt: str = "Scripted", **extra: Any) -> dict:
    return chat(f"{prompt}\n@fake {json.dumps(directives)}", **extra)


async def test_directive_line_is_stripped_from_the_prompt() -> None:
    assert text(await collect(scripted({"tps": 0}))) == text(await collect(chat("Scripted")))


async def test_tokens_directive() -> None:
    assert len(deltas(await collect(scripted({"tokens": 7})))) == 7
    assert len(deltas(await collect(scripted({"tokens": 300})))) == 300


async def test_reply_directive() -> None:
    reply = "Hello, world!\n\n- one\n- two"
    events = await collect(scripted({"reply": reply}))
    assert text(events) == reply
    assert [e.text for e in deltas(events)][:4] == ["Hello", ",", " world", "!"]


async def test_header_directive_wins() -> None:
    endpoint = up.Endpoint("http://fake.invalid/v1", headers={"x-fake": '{"reply": "from header"}'})
    events = await collect(scripted({"reply": "from message", "tokens": 3}), endpoint=endpoint)
    assert text(events) == "from header"


@pytest.mark.parametrize(
    ("status", "type_", "code", "retryable", "retry_after"),
    [
        # The fake's 429 carries `Retry-After: 1`, which the client parses.
        (429, "requests", "rate_limit_exceeded", True, 1.0),
        (401, "invalid_request_error", "invalid_api_key", False, None),
        (503, "server_error", None, True, None),
    ],
)
async def test_status_directive(
    status: int, type_: str, code: str | None, retryable: bool, retry_after: float | None
) -> None:
    [error] = await collect(scripted({"status": status, "message": "scripted failure"}))
    assert error == up.UpstreamError(
        message="scripted failure",
        status=status,
        type=type_,
        code=code,
        retryable=retryable,
        retry_after=retry_after,
    )


async def test_429_sends_retry_after() -> None:
    body = scripted({"status": 429})
    response = await up.get_client().post("http://fake.invalid/v1/chat/completions", json=body)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["message"]


async def test_html_error_directive() -> None:
    [error] = await collect(scripted({"html_error": True}))
    assert error.status == 502
    assert error.message == "HTTP 502 Bad Gateway"
    assert "502 Bad Gateway" in error.body
    assert "<" not in error.body


async def test_error_after_directive() -> None:
    events = await collect(scripted({"error_after": 3, "message": "boom"}))
    assert len(deltas(events)) == 3
    assert events[-1] == up.UpstreamError(message="boom", status=None, type="server_error")
    assert not any(isinstance(e, up.Finish) for e in events)


async def test_error_after_in_non_stream_mode() -> None:
    with pytest.raises(up.UpstreamFailure) as info:
        await up.chat_once(FAKE, scripted({"error_after": 3}, stream=False))
    assert info.value.error.status == 500


async def test_cut_after_directive() -> None:
    events = await collect(scripted({"cut_after": 4}))
    assert events == deltas(events)
    assert len(events) == 4
    lines = await raw_lines(scripted({"cut_after": 4}))
    assert "data: [DONE]" not in lines


async def test_a_gated_stream_holds_after_its_tokens_until_the_gate_opens() -> None:
    body = scripted({"tokens": 8, "tps": 0, "hold_after": 3, "gate": "g-unit"})
    got: list[str] = []
    reached = asyncio.Event()

    async def read() -> None:
        async with contextlib.aclosing(up.stream_chat(FAKE, body)) as events:
            async for event in events:
                if isinstance(event, up.TextDelta):
                    got.append(event.text)
                    if len(got) == 3:
                        reached.set()

    reader = asyncio.ensure_future(read())
    await reached.wait()
    # Held: the reader gets nothing more however long it waits, until the gate opens.
    # (Each pass of the loop gives the fake's send loop its turns; it never stops on a
    # clock, so this fails on any machine that streamed past the hold.)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(got) == 3 and not reader.done()
    response = await up.get_client().post("http://fake.invalid/v1/fake/gates/g-unit")
    assert response.json() == {"gate": "g-unit", "open": True}
    await reader
    assert len(got) == 8


async def test_a_gate_opened_before_the_stream_reaches_it_does_not_hold() -> None:
    await up.get_client().post("http://fake.invalid/v1/fake/gates/g-early")
    events = await collect(scripted({"tokens": 5, "tps": 0, "hold_after": 2, "gate": "g-early"}))
    assert len(deltas(events)) == 5


async def test_tool_calls_directive() -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
        {"name": "noop", "arguments": {}},
    ]
    events = await collect(scripted({"tool_calls": calls}))
    fragments = [e for e in events if isinstance(e, up.ToolCallDelta)]
    assert not deltas(events)
    assert events[-1] == up.Finish("tool_calls")
    assert fragments[0] == up.ToolCallDelta(index=0, id="call_0", name="get_weather", arguments="")
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for f in fragments:
        args[f.index] = args.get(f.index, "") + f.arguments
        if f.name:
            names[f.index] = f.name
    assert names == {0: "get_weather", 1: "noop"}
    assert json.loads(args[0]) == calls[0]["arguments"]
    assert json.loads(args[1]) == {}
    assert sum(1 for f in fragments if f.index == 0) >= 3  # arguments come in several pieces


async def test_tool_calls_non_stream() -> None:
    calls = [{"name": "f", "arguments": {"a": 1}}]
    completion = await up.chat_once(FAKE, scripted({"tool_calls": calls}, stream=False))
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "f", "arguments": '{"a": 1}'}


async def test_usage_false_and_finish_reason_override() -> None:
    body = scripted({"usage": False, "finish_reason": "content_filter"})
    events = await collect({**body, "stream_options": {"include_usage": True}})
    assert not any(isinstance(e, up.Usage) for e in events)
    assert events[-1] == up.Finish("content_filter")


async def test_keepalive_directive() -> None:
    body = scripted({"keepalive": True, "tokens": 5})
    assert ": keep-alive" in await raw_lines(body)
    assert len(deltas(await collect(body))) == 5


THOUGHT = "The user wants rivers. Rivers flow downhill, so start there."


def reasoning_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, up.ReasoningDelta))


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_directive_streams_the_thinking_before_the_answer(field: str) -> None:
    body = scripted({"reasoning": THOUGHT, "reasoning_field": field, "tokens": 6})
    body["stream_options"] = {"include_usage": True}
    lines = await raw_lines(body)
    chunks = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    fields = [
        key
        for c in chunks
        for choice in c["choices"]
        for key in ("reasoning_content", "reasoning", "content")
        if choice["delta"].get(key)
    ]
    thinking = len(tokenize(THOUGHT))
    assert fields == [field] * thinking + ["content"] * 6  # all of it first, in one field

    events = await collect(body)
    assert reasoning_of(events) == THOUGHT
    first_text = next(i for i, e in enumerate(events) if isinstance(e, up.TextDelta))
    last_thought = max(i for i, e in enumerate(events) if isinstance(e, up.ReasoningDelta))
    assert last_thought < first_text
    [usage] = [e for e in events if isinstance(e, up.Usage)]
    assert usage.raw["completion_tokens_details"] == {"reasoning_tokens": thinking}
    assert usage.completion_tokens == thinking + 6  # reasoning counts as completion, as OpenAI


async def test_reasoning_directive_without_streaming_and_with_tool_calls() -> None:
    completion = await up.chat_once(FAKE, scripted({"reasoning": THOUGHT}, stream=False))
    message = completion["choices"][0]["message"]
    assert message["reasoning_content"] == THOUGHT and THOUGHT not in message["content"]
    calls = [{"name": "f", "arguments": {"a": 1}}]
    events = await collect(scripted({"reasoning": THOUGHT, "tool_calls": calls}))
    assert reasoning_of(events) == THOUGHT and events[-1] == up.Finish("tool_calls")


async def test_reasoning_does_not_shift_the_logprobs() -> None:
    events = await collect(scripted({"reasoning": THOUGHT, "tokens": 5}, logprobs=True))
    tokens = [t["token"] for e in events if isinstance(e, up.Logprobs) for t in e.tokens]
    assert "".join(tokens) == text(events) and len(tokens) == 5


async def test_cached_tokens_directive() -> None:
    for asked, cached in ((3, 3), (99, 5)):  # never more than the prompt's 5 tokens
        body = scripted({"cached_tokens": asked}, prompt="one two three four five")
        body["stream_options"] = {"include_usage": True}
        [usage] = [e for e in await collect(body) if isinstance(e, up.Usage)]
        assert usage.prompt_tokens == 5
        assert usage.raw["prompt_tokens_details"] == {"cached_tokens": cached}
        assert "completion_tokens_details" not in usage.raw  # no reasoning scripted


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("auto", "from reasoning_content"),
        ("reasoning_content", "from reasoning_content"),
        ("reasoning", "from reasoning"),
    ],
)
async def test_the_endpoints_reasoning_field_decides_what_is_read(
    setting: str, expected: str
) -> None:
    # A server that sends both fields, with different text in each.
    delta = {"reasoning_content": "from reasoning_content", "reasoning": "from reasoning"}
    chunks = [
        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]},
    ]
    payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload.encode()})

    up.set_transport(StreamingASGITransport(app))
    endpoint = up.Endpoint("http://both-fields.test/v1", reasoning_field=setting)
    events = await collect(chat(), endpoint=endpoint)
    assert reasoning_of(events) == expected and text(events) == "Hi"
    # Only one field is read: an endpoint that sends just the other shows no reasoning.
    if setting != "auto":
        other = "reasoning" if setting == "reasoning_content" else "reasoning_content"
        delta.pop(setting)
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        events = await collect(chat(), endpoint=endpoint)
        assert reasoning_of(events) == "" and other in delta


# --------------------------------------------------------------------------- errors & routes


async def test_unknown_model() -> None:
    [error] = await collect(chat(model="gpt-99"))
    assert error == up.UpstreamError(
        message="The model `gpt-99` does not exist",
        status=404,
        type="invalid_request_error",
        code="model_not_found",
        param="model",
    )


async def test_unknown_path_and_invalid_json() -> None:
    client = up.get_client()
    response = await client.post("http://fake.invalid/v1/nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"
    response = await client.post("http://fake.invalid/chat/completions", json=chat())
    assert response.status_code == 404
    response = await client.post(
        "http://fake.invalid/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_models_route() -> None:
    assert await up.list_models(FAKE) == ["demo", "demo-fast", "demo-slow"]
    response = await up.get_client().get("http://fake.invalid/v1/models")
    assert response.json()["data"][0] == {
        "id": "demo",
        "object": "model",
        "created": 0,
        "owned_by": "playground",
    }


async def test_legacy_completions() -> None:
    body = {"model": "demo-fast", "prompt": "Once upon a time", "stream": True, "max_tokens": 6}
    events = await collect(body, path="completions")
    assert len(deltas(events)) == 6
    assert events[-1] == up.Finish("length")
    lines = await raw_lines(body, path="completions")
    first = json.loads(lines[0].removeprefix("data: "))
    assert first["object"] == "text_completion"
    assert first["choices"][0]["text"] == deltas(events)[0].text
    completion = await up.chat_once(FAKE, {**body, "stream": False}, path="completions")
    assert completion["choices"][0]["text"] == text(events)


# --------------------------------------------------------------------------- personalities


async def test_server_without_stream_options() -> None:
    endpoint = personality(supports_stream_options=False)
    [error] = await collect(chat(stream_options={"include_usage": True}), endpoint=endpoint)
    assert error == up.UpstreamError(
        message="Unrecognized request argument supplied: stream_options",
        status=400,
        type="invalid_request_error",
        param="stream_options",
    )
    assert text(await collect(chat(), endpoint=endpoint))


async def test_server_with_max_completion_tokens_only() -> None:
    endpoint = personality(max_tokens_field="max_completion_tokens")
    [error] = await collect(chat(max_tokens=5), endpoint=endpoint)
    assert (error.status, error.param, error.code) == (400, "max_tokens", "unsupported_parameter")
    events = await collect(chat(max_completion_tokens=5), endpoint=endpoint)
    assert len(deltas(events)) == 5


async def test_server_with_max_tokens_only() -> None:
    endpoint = personality(max_tokens_field="max_tokens")
    [error] = await collect(chat(max_completion_tokens=5), endpoint=endpoint)
    assert error.message == "Unrecognized request argument supplied: max_completion_tokens"
    assert len(deltas(await collect(chat(max_tokens=5), endpoint=endpoint))) == 5


async def test_server_without_tools() -> None:
    endpoint = personality(supports_tools=False)
    [error] = await collect(chat(tools=[]), endpoint=endpoint)
    assert (error.status, error.param) == (400, "tools")


async def test_plain_error_shape() -> None:
    endpoint = personality(error_shape="plain")
    [error] = await collect(chat(model="missing"), endpoint=endpoint)
    assert error.status == 404
    assert error.message == "HTTP 404 Not Found"
    assert error.body == "Internal error: model not found"


async def test_config_rate_and_models(served: Recorded) -> None:
    endpoint = personality(tokens_per_second=0, ttft_ms=0, models=["only-one"])
    assert await up.list_models(endpoint) == ["only-one"]
    assert text(await collect(chat(model="only-one"), endpoint=endpoint))
    [(delay, steps)] = served.replies  # a rate of 0 and no ttft: nothing is paced
    assert delay == 0 and {at for at, _, _ in steps} == {0.0}


# --------------------------------------------------------------------------- disconnects


def _fake_tasks() -> list[asyncio.Task[Any]]:
    names = {"FakeUpstream.__call__", "_send_reply", "_wait_for_disconnect", "gated.<locals>.call"}
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ in names]


async def test_client_going_away_stops_the_server_side(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chat.fake_upstream")
    # After its third token the fake is held (the gate never opens): only the client
    # going away can end the reply, so the count it logs is where the client left.
    never = asyncio.Event()
    up.set_transport(StreamingASGITransport(gated(FakeUpstream(), after_tokens=3, gate=never)))
    body = scripted({"tokens": 500, "tps": 0, "ttft_ms": 0})
    got = 0
    async with asyncio.timeout(60):  # a safety net only: closing must not wait for the reply
        async with contextlib.aclosing(up.stream_chat(PERSONALITY, body)) as events:
            async for event in events:
                got += isinstance(event, up.TextDelta)
                if got == 3:
                    break
    assert not _fake_tasks()
    stopped = re.search(r"client went away; stopped after (\d+) tokens", caplog.text)
    assert stopped is not None
    assert int(stopped.group(1)) == 3


# --------------------------------------------------------------------------- logprobs


def logprob_tokens(events: list[Any], choice: int = 0) -> list[dict[str, Any]]:
    return [
        t for e in events if isinstance(e, up.Logprobs) and e.choice == choice for t in e.tokens
    ]


@pytest.mark.parametrize("top", [0, 3, 20])
async def test_chat_logprobs_streamed_and_not(top: int) -> None:
    body = chat("Explain caching", logprobs=True, top_logprobs=top, n=2)
    events = await collect(body)
    for choice in (0, 1):
        tokens = logprob_tokens(events, choice)
        pieces = [e.text for e in deltas(events) if e.choice == choice]
        assert [t["token"] for t in tokens] == pieces  # one entry per streamed token
        assert all(len(t["top"]) == top for t in tokens)
        for t in tokens:
            assert t["logprob"] < 0
            probabilities = [math.exp(a["logprob"]) for a in t["top"]]
            assert probabilities == sorted(probabilities, reverse=True)
            assert len({a["token"] for a in t["top"]}) == top  # all different
            chosen = math.exp(t["logprob"])
            others = sum(math.exp(a["logprob"]) for a in t["top"] if a["token"] != t["token"])
            assert chosen + others <= 1.0001
    # The same numbers without streaming (parsed by the client from the JSON answer).
    whole = await collect({**body, "stream": False})
    assert logprob_tokens(whole, 0) == logprob_tokens(events, 0)
    assert logprob_tokens(whole, 1) == logprob_tokens(events, 1)
    assert logprob_tokens(whole, 0) != logprob_tokens(whole, 1)


async def test_chat_logprobs_wire_shape() -> None:
    lines = await raw_lines(chat(logprobs=True, top_logprobs=2, max_tokens=3))
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["logprobs"] is None  # the role chunk
    assert chunks[-1]["choices"][0]["logprobs"] is None  # the finish chunk
    [entry] = chunks[1]["choices"][0]["logprobs"]["content"]
    assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
    assert entry["token"] == chunks[1]["choices"][0]["delta"]["content"]
    assert entry["bytes"] == list(entry["token"].encode())
    assert [set(a) for a in entry["top_logprobs"]] == [{"token", "logprob", "bytes"}] * 2
    completion = await up.chat_once(FAKE, chat(logprobs=True, max_tokens=3, stream=False))
    logprobs = completion["choices"][0]["logprobs"]
    assert len(logprobs["content"]) == 3
    assert all(e["top_logprobs"] == [] for e in logprobs["content"])


async def test_chosen_token_is_usually_but_not_always_the_most_likely() -> None:
    events = await collect(scripted({"tokens": 300}, logprobs=True, top_logprobs=5))
    tokens = logprob_tokens(events)
    assert len(tokens) == 300
    top_is_chosen = sum(t["top"][0]["token"] == t["token"] for t in tokens)
    assert 0.6 * 300 <= top_is_chosen < 300
    buckets = {min(9, int(math.exp(t["logprob"]) * 10)) for t in tokens}
    assert len(buckets) >= 6  # a spread of shades, not one colour
    again = await collect(scripted({"tokens": 300}, logprobs=True, top_logprobs=5))
    assert logprob_tokens(again) == tokens  # deterministic


async def test_no_logprobs_unless_asked() -> None:
    events = await collect(chat(logprobs=False, n=2))
    assert not any(isinstance(e, up.Logprobs) for e in events)
    lines = await raw_lines(chat())
    assert all('"logprobs":null' in line for line in lines[:-1])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": False, "top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": 1}, "logprobs"),
    ],
)
async def test_chat_logprobs_validation(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(up.UpstreamFailure) as info:
        await up.chat_once(FAKE, chat(stream=False, **extra))
    assert info.value.error.status == 400
    assert info.value.error.param == param


def legacy(prompt: str = "Once upon a time", stream: bool = True, **extra: Any) -> dict:
    return {"model": "demo-fast", "prompt": prompt, "stream": stream, **extra}


@pytest.mark.parametrize("top", [0, 2, 5])
async def test_legacy_logprobs_streamed_and_not(top: int) -> None:
    body = legacy(logprobs=top, max_tokens=12)
    events = await collect(body, path="completions")
    tokens = logprob_tokens(events)
    assert [t["token"] for t in tokens] == [e.text for e in deltas(events)]
    assert len(tokens) == 12
    for t in tokens:
        # The sampled token is always listed, so there are top or top + 1 entries.
        assert len(t["top"]) in (top, top + 1) and len(t["top"]) >= 1
        assert t["token"] in [a["token"] for a in t["top"]]
    assert logprob_tokens(await collect({**body, "stream": False}, path="completions")) == tokens

    completion = await up.chat_once(FAKE, {**body, "stream": False}, path="completions")
    logprobs = completion["choices"][0]["logprobs"]
    assert set(logprobs) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    assert "".join(logprobs["tokens"]) == completion["choices"][0]["text"]
    offsets = [sum(len(t) for t in logprobs["tokens"][:i]) for i in range(12)]
    assert logprobs["text_offset"] == offsets
    assert all(isinstance(top_, dict) for top_ in logprobs["top_logprobs"])


async def test_legacy_logprobs_validation() -> None:
    for bad in (6, -1, True, "3"):
        with pytest.raises(up.UpstreamFailure) as info:
            await up.chat_once(FAKE, legacy(stream=False, logprobs=bad), path="completions")
        assert info.value.error.param == "logprobs"


async def test_legacy_echo_repeats_the_prompt() -> None:
    prompt = "Once upon a time"
    plain = await up.chat_once(FAKE, legacy(prompt, stream=False, max_tokens=5), path="completions")
    body = legacy(prompt, echo=True, max_tokens=5, logprobs=1)
    echoed = await up.chat_once(FAKE, {**body, "stream": False}, path="completions")
    assert echoed["choices"][0]["text"] == prompt + plain["choices"][0]["text"]
    assert echoed["usage"] == plain["usage"]  # the echo is not completion tokens
    logprobs = echoed["choices"][0]["logprobs"]
    assert logprobs["tokens"][:4] == ["Once", " upon", " a", " time"]
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert all(isinstance(v, float) for v in logprobs["token_logprobs"][1:])

    events = await collect(body, path="completions")
    assert text(events) == echoed["choices"][0]["text"]
    tokens = logprob_tokens(events)
    assert tokens[0] == {"token": "Once", "logprob": 0.0, "top": []}  # null: unknown
    assert len(tokens) == 4 + 5


async def test_legacy_suffix_is_accepted_and_ignored() -> None:
    plain = await up.chat_once(FAKE, legacy(stream=False), path="completions")
    with_suffix = await up.chat_once(
        FAKE, legacy(stream=False, suffix=" THE END"), path="completions"
    )
    assert with_suffix["choices"][0]["text"] == plain["choices"][0]["text"]
    assert "THE END" not in with_suffix["choices"][0]["text"]
    for bad in ({"suffix": 3}, {"echo": "yes"}):
        with pytest.raises(up.UpstreamFailure) as info:
            await up.chat_once(FAKE, legacy(stream=False, **bad), path="completions")
        assert info.value.error.param == next(iter(bad))


async def test_legacy_n_choices() -> None:
    body = legacy(n=3, max_tokens=8)
    events = await collect(body, path="completions")
    texts = [text(events, c) for c in range(3)]
    assert len(set(texts)) == 3 and all(texts)
    completion = await up.chat_once(FAKE, {**body, "stream": False}, path="completions")
    assert [c["text"] for c in completion["choices"]] == texts
    assert [c["index"] for c in completion["choices"]] == [0, 1, 2]


async def test_raw_capture_against_the_fake() -> None:
    raw: list[str] = []
    body = chat(logprobs=True, top_logprobs=1, max_tokens=4)
    async with contextlib.aclosing(up.stream_chat(FAKE, body, raw=raw)) as events:
        parsed = [e async for e in events]
    sent = [line.removeprefix("data: ") for line in await raw_lines(body)]

    def same_but_ids(payload: str) -> Any:
        if payload == "[DONE]":
            return payload
        obj = json.loads(payload)
        return {k: v for k, v in obj.items() if k not in ("id", "created")}

    assert [same_but_ids(r) for r in raw] == [same_but_ids(s) for s in sent]
    assert raw[-1] == "[DONE]" and '"logprobs":{"content":[{' in raw[1]
    assert len(raw) == 1 + 4 + 1 + 1  # role, tokens, finish, [DONE]
    assert len(logprob_tokens(parsed)) == 4


def _offered(name: str) -> dict[str, Any]:
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "parameters": params}}


async def _called(prompt: str, **extra: Any) -> list[str]:
    tools = [_offered("get_weather"), _offered("get_time")]
    completion = await up.chat_once(FAKE, chat(prompt, stream=False, tools=tools, **extra))
    return [c["function"]["name"] for c in completion["choices"][0]["message"]["tool_calls"]]


async def test_unscripted_calls_honour_a_named_tool_choice_and_parallel_false() -> None:
    both = "Get the weather in Paris and the time in Tokyo."
    assert await _called(both, tool_choice="required") == ["get_weather", "get_time"]
    named = {"type": "function", "function": {"name": "get_time"}}
    assert await _called("The weather in Paris?", tool_choice=named) == ["get_time"]
    one = await _called(both, tool_choice="required", parallel_tool_calls=False)
    assert one == ["get_weather"]
    assert await _called(both, tool_choice="required", parallel_tool_calls=True) == [
        "get_weather",
        "get_time",
    ]


async def test_unscripted_tools_are_called_when_the_prompt_names_their_purpose() -> None:
    forecast = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Get the forecast for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    tools = [forecast, _offered("get_time")]

    async def called(prompt: str) -> list[str]:
        completion = await up.chat_once(FAKE, chat(prompt, stream=False, tools=tools))
        message = completion["choices"][0]["message"]
        return [c["function"]["name"] for c in message.get("tool_calls") or []]

    # "forecasts" is the description's "forecast"; the generic words ("city", "Get") are not.
    assert await called("Any forecasts for Lisbon tomorrow?") == ["lookup"]
    assert await called("Get me something nice in the city.") == []
    assert await called("What time is it in Lisbon?") == ["get_time"]


def _blocks(text: str) -> list[str]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tops = [t for t in md.parse(text) if t.nesting >= 0 and t.level == 0]
    return [f"fence:{t.info}" if t.type == "fence" else t.type for t in tops]


@pytest.mark.parametrize(
    ("prompt", "block"),
    [
        ("Make a table of latency by region", "table_open"),
        ("Show the settings as JSON", "fence:json"),
        ("Write a function that sorts names", "fence:python"),
        ("A SQL query for the ten newest users", "fence:sql"),
        ("Some bash to list the logs", "fence:bash"),
        ("How do I rotate an API key?", "ordered_list_open"),
        ("List a few ideas for a name", "bullet_list_open"),
    ],
)
def test_the_demo_answers_in_the_shape_a_question_asks_for(prompt: str, block: str) -> None:
    from chat.fake_upstream import generate_reply

    for salt in range(5):  # whatever the sampling, the asked shape is there
        text = generate_reply(prompt, salt=salt)
        assert block in _blocks(text), text
        exact = generate_reply(prompt, salt=salt, tokens=300)
        assert len(tokenize(exact)) == 300 and block in _blocks(exact)


def test_a_question_asking_for_no_shape_gets_prose_and_sometimes_extras() -> None:
    from chat.fake_upstream import generate_reply

    kinds = [set(_blocks(generate_reply(f"Tell me about rivers {i}"))) for i in range(40)]
    assert all("paragraph_open" in k for k in kinds)
    assert any("table_open" not in k and len(k) == 1 for k in kinds)  # prose alone
    assert not any("table_open" in k for k in kinds)
