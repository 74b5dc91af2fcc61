"""stream_chat / chat_once / list_models against scripted HTTP responses (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from chat import upstream as up

KEY = "sk-secret-123"
EP = up.Endpoint("https://api.example.test:8443/v1", api_key=KEY, headers={"X-Org": "acme"})
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await up.aclose_client()
    up.set_transport(None)


def use(handler: Handler) -> list[httpx.Request]:
    """Serve every request with ``handler``; returns the list the requests are logged in."""
    seen: list[httpx.Request] = []

    async def logged(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await handler(request)

    up.set_transport(httpx.MockTransport(logged))
    return seen


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    obj = {"id": "c1", "object": "chat.completion.chunk", "choices": [choice], **extra}
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
DONE = "data: [DONE]\n\n"


HANG = None  # a part of ``sse()``: the upstream says nothing more, ever


class VirtualClock:
    """The running loop's clock, frozen: it moves only by ``advance``. Deadlines (asyncio
    timeouts, call_at timers) then fire at exact points in the test's own script,
    however slowly a busy machine runs it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now = loop.time()

    def time(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for _ in range(5):  # let the timers now due run (loop turns, not time)
            await asyncio.sleep(0)


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    loop = asyncio.get_running_loop()
    virtual = VirtualClock(loop)
    monkeypatch.setattr(loop, "time", virtual.time)
    return virtual


async def body_of(
    parts: tuple[bytes | str | float | None, ...], clock: VirtualClock | None = None
) -> AsyncIterator[bytes]:
    for part in parts:
        if part is HANG:
            await asyncio.Event().wait()  # never set: only a deadline ends this
        elif isinstance(part, float):
            assert clock is not None, "a pause needs the virtual clock"
            await clock.advance(part)
        else:
            yield part.encode() if isinstance(part, str) else part


def sse(
    *parts: bytes | str | float | None,
    content_type: str = "text/event-stream",
    clock: VirtualClock | None = None,
) -> Handler:
    """A 200 event stream of ``parts``; a float part moves ``clock`` on that many seconds,
    ``HANG`` never returns."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": content_type}, content=body_of(parts, clock)
        )

    return handler


def reply(status: int, content: bytes | str, content_type: str, **headers: str) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        data = content.encode() if isinstance(content, str) else content
        return httpx.Response(
            status, headers={"content-type": content_type, **headers}, content=data
        )

    return handler


async def collect(endpoint: up.Endpoint = EP, body: dict[str, Any] = BODY) -> list[Any]:
    async with contextlib.aclosing(up.stream_chat(endpoint, body)) as events:
        return [event async for event in events]


def text(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, up.TextDelta))


# --------------------------------------------------------------------------- up.api_url


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://h/v1", "https://h/v1/chat/completions"),
        ("https://h/v1/", "https://h/v1/chat/completions"),
        ("https://h/v1//", "https://h/v1/chat/completions"),
        ("https://h", "https://h/chat/completions"),
        (" https://h:8080/openai/v1/ ", "https://h:8080/openai/v1/chat/completions"),
        ("https://h/v1?api-version=2", "https://h/v1/chat/completions?api-version=2"),
    ],
)
def test_api_url(base: str, expected: str) -> None:
    assert up.api_url(base, "chat/completions") == expected
    assert up.api_url(base, "/chat/completions") == expected


# --------------------------------------------------------------------------- streams


async def test_normal_stream_and_request_shape() -> None:
    seen = use(
        sse(ROLE, chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk(finish="stop"), DONE)
    )
    events = await collect()
    assert events == [up.TextDelta("Hel"), up.TextDelta("lo"), up.Finish("stop")]
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.example.test:8443/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-org"] == "acme"
    assert json.loads(request.content) == BODY


async def test_no_authorization_without_key_and_custom_header_overrides() -> None:
    seen = use(sse(chunk({"content": "x"}), DONE))
    await collect(up.Endpoint("https://h/v1"))
    await collect(up.Endpoint("https://h/v1", api_key=KEY, headers={"Authorization": "Token abc"}))
    assert "authorization" not in seen[0].headers
    assert seen[1].headers.get_list("authorization") == ["Token abc"]


async def test_comments_and_keepalives_are_ignored() -> None:
    use(sse(": keep-alive\n\n", ROLE, ":\n\n", chunk({"content": "a"}), ": ping\n\n", DONE))
    assert await collect() == [up.TextDelta("a")]


async def test_crlf_and_multiple_events_per_network_chunk() -> None:
    both = chunk({"content": "a"}) + chunk({"content": "b"})
    use(sse(both.replace("\n", "\r\n"), DONE))
    assert text(await collect()) == "ab"


async def test_error_inside_stream_keeps_earlier_text_and_stops() -> None:
    error = {"error": {"message": "Overloaded", "type": "server_error", "code": "busy"}}
    use(
        sse(
            chunk({"content": "partial"}), f"data: {json.dumps(error)}\n\n", chunk({"content": "x"})
        )
    )
    events = await collect()
    assert events[0] == up.TextDelta("partial")
    assert events[1:] == [
        up.UpstreamError(message="Overloaded", status=None, type="server_error", code="busy")
    ]


async def test_final_usage_chunk_with_empty_choices() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    final = f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
    use(sse(chunk({"content": "a"}, usage=None), chunk(finish="stop", usage=None), final, DONE))
    events = await collect()
    assert events == [up.TextDelta("a"), up.Finish("stop"), up.Usage(10, 5, 15, raw=usage)]


async def test_stream_without_done_just_ends() -> None:
    use(sse(ROLE, chunk({"content": "cut"})))
    assert await collect() == [up.TextDelta("cut")]


async def test_stream_without_usage_has_no_usage_event() -> None:
    use(sse(chunk({"content": "a"}), chunk(finish="length"), DONE))
    events = await collect()
    assert not any(isinstance(e, up.Usage) for e in events)
    assert events[-1] == up.Finish("length")


async def test_multibyte_characters_split_across_network_chunks() -> None:
    raw = chunk({"content": "café 🎉"}).encode()
    e_acute = raw.index("é".encode())
    party = raw.index("🎉".encode())
    use(sse(raw[: e_acute + 1], raw[e_acute + 1 : party + 2], raw[party + 2 :], DONE))
    assert await collect() == [up.TextDelta("café 🎉")]


async def test_malformed_chunk_reports_error_after_earlier_text() -> None:
    use(sse(chunk({"content": "ok"}), 'data: {"choices": [\n\n', chunk({"content": "later"})))
    events = await collect()
    assert events[0] == up.TextDelta("ok")
    assert len(events) == 2
    error = events[1]
    assert isinstance(error, up.UpstreamError)
    assert error.message.startswith("Malformed chunk from the endpoint: ")
    assert error.body == '{"choices": ['


async def test_reasoning_fields() -> None:
    use(
        sse(
            chunk({"reasoning_content": "think "}),
            chunk({"reasoning": "more"}),
            chunk({"content": "answer"}),
            DONE,
        )
    )
    assert await collect() == [
        up.ReasoningDelta("think "),
        up.ReasoningDelta("more"),
        up.TextDelta("answer"),
    ]


async def test_tool_call_fragments() -> None:
    first = {
        "index": 0,
        "id": "call_a",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    second = {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g"}}
    no_index = {"function": {"arguments": '{"x"'}}
    use(
        sse(
            chunk({"tool_calls": [first, second]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 1}"}}]}),
            chunk({"tool_calls": [no_index]}),
            chunk(finish="tool_calls"),
            DONE,
        )
    )
    assert await collect() == [
        up.ToolCallDelta(index=0, id="call_a", name="f", arguments=""),
        up.ToolCallDelta(index=1, id="call_b", name="g", arguments=""),
        up.ToolCallDelta(index=1, arguments=": 1}"),
        up.ToolCallDelta(index=0, arguments='{"x"'),
        up.Finish("tool_calls"),
    ]


async def test_legacy_function_call_and_completion_text() -> None:
    legacy = {"choices": [{"index": 0, "text": "old style", "finish_reason": None}]}
    use(
        sse(
            chunk({"function_call": {"name": "f", "arguments": "{}"}}),
            f"data: {json.dumps(legacy)}\n\n",
            DONE,
        )
    )
    assert await collect() == [
        up.ToolCallDelta(index=0, name="f", arguments="{}"),
        up.TextDelta("old style"),
    ]


async def test_choice_index_and_empty_content_skipped() -> None:
    c1 = {"choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}
    use(sse(chunk({"content": ""}), chunk({"content": None}), f"data: {json.dumps(c1)}\n\n", DONE))
    assert await collect() == [up.TextDelta("b", choice=1)]


async def test_unlabelled_stream_is_still_parsed() -> None:
    use(sse(chunk({"content": "a"}), DONE, content_type=""))
    assert await collect() == [up.TextDelta("a")]


# --------------------------------------------------------------------------- HTTP errors


async def test_openai_error_body() -> None:
    error = {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    use(reply(401, json.dumps(error), "application/json"))
    assert await collect() == [
        up.UpstreamError(
            message="Incorrect API key provided",
            status=401,
            type="invalid_request_error",
            code="invalid_api_key",
            retryable=False,
        )
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "quota exceeded"}, "quota exceeded"),
        ({"message": "no such route"}, "no such route"),
        ({"detail": "Not authenticated"}, "Not authenticated"),
        ({"detail": [{"loc": ["body", "model"], "msg": "field required"}]}, "field required"),
        ([{"error": {"message": "wrapped", "code": 429}}], "wrapped"),
    ],
)
async def test_other_error_shapes(body: Any, message: str) -> None:
    use(reply(429, json.dumps(body), "application/json"))
    [error] = await collect()
    assert error.message == message
    assert error.status == 429
    assert error.retryable is True


async def test_html_error_page() -> None:
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
    )
    use(reply(502, page, "text/html"))
    [error] = await collect()
    assert error.message == "HTTP 502 Bad Gateway"
    assert error.status == 502
    assert error.retryable is True
    assert error.body == "502 Bad Gateway 502 Bad Gateway nginx"


async def test_standard_reason_phrase_wins_over_the_servers() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"content-type": "text/plain"},
            content=b"slow down",
            extensions={"reason_phrase": b"Unknown Status"},
        )

    use(handler)
    [error] = await collect()
    assert (error.message, error.body) == ("HTTP 429 Too Many Requests", "slow down")


async def test_long_error_body_is_truncated() -> None:
    use(reply(500, "x" * 100_000, "text/plain"))
    [error] = await collect()
    assert error.message == "HTTP 500 Internal Server Error"
    assert error.retryable is False
    assert error.body == "x" * 500


async def test_redirect_is_not_followed() -> None:
    use(reply(301, "", "text/plain", location="https://elsewhere.test/v1/chat/completions"))
    [error] = await collect()
    assert error.status == 301
    assert "https://elsewhere.test/v1/chat/completions" in error.message


async def test_json_answer_to_a_stream_request() -> None:
    completion = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Full answer",
                    "reasoning_content": "hmm",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    use(reply(200, json.dumps(completion), "application/json; charset=utf-8"))
    assert await collect() == [
        up.ReasoningDelta("hmm"),
        up.TextDelta("Full answer"),
        up.ToolCallDelta(index=0, id="t1", name="f", arguments="{}"),
        up.Finish("stop"),
        up.Usage(3, 2, 5, raw=completion["usage"]),
    ]


async def test_html_answer_with_200_is_an_error() -> None:
    use(reply(200, "<html><body>Login required</body></html>", "text/html"))
    [error] = await collect()
    assert isinstance(error, up.UpstreamError)
    assert "instead of an event stream" in error.message
    assert error.body == "Login required"


# --------------------------------------------------------------------------- transport


async def test_connect_error_names_host_not_key() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    use(refuse)
    [error] = await collect()
    assert error.type == "connection_error"
    assert error.retryable is True
    assert error.status is None
    assert "api.example.test:8443" in error.message
    assert "Connection refused" in error.message
    assert KEY not in error.message


async def test_connection_lost_mid_stream() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield chunk({"content": "a"}).encode()
        raise httpx.ReadError("connection reset")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=broken())

    use(handler)
    events = await collect()
    assert events[0] == up.TextDelta("a")
    assert isinstance(events[1], up.UpstreamError)
    assert "was lost" in events[1].message


async def test_first_byte_timeout_waiting_for_headers() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers: only the deadline can end the wait
        raise AssertionError("not reached")

    use(silent)
    [error] = await collect(up.Endpoint("https://h/v1", first_byte_timeout=0.05))
    assert error == up.UpstreamError(
        message="No response within 0.05 s", type="timeout", retryable=True
    )


async def test_first_byte_timeout_waiting_for_first_event() -> None:
    use(sse(": just a comment\n\n", HANG))
    [error] = await collect(up.Endpoint("https://h/v1", first_byte_timeout=0.05))
    assert error.message == "No response within 0.05 s"


async def test_idle_timeout_between_events() -> None:
    use(sse(chunk({"content": "a"}), HANG))
    events = await collect(up.Endpoint("https://h/v1", first_byte_timeout=5, idle_timeout=0.05))
    assert events == [
        up.TextDelta("a"),
        up.UpstreamError(
            message="Stream idle for more than 0.05 s", type="timeout", retryable=True
        ),
    ]


async def test_a_steady_stream_longer_than_the_idle_timeout_is_not_cut(clock) -> None:
    # The idle deadline follows the last chunk (it is moved lazily, not per chunk): twelve
    # gaps of 0.03 s (0.36 s in all) against 0.1 s, on the virtual clock.
    parts: list[object] = []
    for i in range(12):
        parts += [chunk({"content": str(i)}), 0.03]
    use(sse(*parts, DONE, clock=clock))
    events = await collect(up.Endpoint("https://h/v1", first_byte_timeout=1, idle_timeout=0.1))
    assert events == [up.TextDelta(str(i)) for i in range(12)]


async def test_consumer_time_does_not_count_as_idle(clock) -> None:
    use(sse(chunk({"content": "a"}), chunk({"content": "b"}), chunk({"content": "c"}), DONE))
    endpoint = up.Endpoint("https://h/v1", first_byte_timeout=0.1, idle_timeout=0.1)
    seen = []
    async with contextlib.aclosing(up.stream_chat(endpoint, BODY)) as events:
        async for event in events:
            seen.append(event)
            await clock.advance(0.15)  # slower than both deadlines
    assert seen == [up.TextDelta("a"), up.TextDelta("b"), up.TextDelta("c")]


class TrackedStream(httpx.AsyncByteStream):
    """An endless event stream that records whether it was closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield chunk({"content": "tick"}).encode()
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        self.closed.set()


async def test_breaking_out_closes_the_response() -> None:
    stream = TrackedStream()

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    use(handler)
    async with contextlib.aclosing(up.stream_chat(EP, BODY)) as events:
        async for _ in events:
            assert not stream.closed.is_set()
            break
    assert stream.closed.is_set()


async def test_cancelling_the_consumer_closes_the_response() -> None:
    stream = TrackedStream()
    got_one = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    async def consume() -> None:
        async for _ in up.stream_chat(EP, BODY):
            got_one.set()

    use(handler)
    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 60)  # a safety net only
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed.is_set()


# --------------------------------------------------------------------------- one-shot calls


async def test_chat_once_returns_the_completion() -> None:
    completion = {"choices": [{"index": 0, "message": {"content": "hi"}}]}
    seen = use(reply(200, json.dumps(completion), "application/json"))
    assert await up.chat_once(EP, {"model": "m", "messages": []}) == completion
    assert seen[0].headers["accept"] == "application/json"


async def test_chat_once_raises_upstream_failure() -> None:
    use(
        reply(
            503,
            json.dumps({"error": {"message": "busy", "type": "server_error"}}),
            "application/json",
        )
    )
    with pytest.raises(up.UpstreamFailure) as info:
        await up.chat_once(EP, {"model": "m", "messages": []})
    assert info.value.error.status == 503
    assert info.value.error.message == "busy"
    assert info.value.error.retryable is True


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b"}]},
        [{"id": "a"}, {"id": "b"}],
        ["a", "b"],
        {"models": [{"name": "a"}, {"model": "b"}]},
        {"models": [{"name": "a", "model": "a"}, {"id": "b"}]},
    ],
)
async def test_list_models_shapes(payload: Any) -> None:
    seen = use(reply(200, json.dumps(payload), "application/json"))
    assert await up.list_models(EP) == ["a", "b"]
    assert seen[0].method == "GET"
    assert str(seen[0].url) == "https://api.example.test:8443/v1/models"


@pytest.mark.parametrize(
    "content", ['{"status": "ok"}', "<html>Welcome to nginx!</html>", '{"data": [1, 2]}']
)
async def test_list_models_rejects_other_answers(content: str) -> None:
    use(reply(200, content, "application/json"))
    with pytest.raises(up.UpstreamFailure) as info:
        await up.list_models(EP)
    assert info.value.error.message.startswith(
        "The endpoint answered /models with something that is not a model list: "
    )


async def test_list_models_http_error() -> None:
    use(reply(404, '{"detail": "Not Found"}', "application/json"))
    with pytest.raises(up.UpstreamFailure) as info:
        await up.list_models(EP)
    assert (info.value.error.status, info.value.error.message) == (404, "Not Found")


async def test_list_models_connect_error() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    use(refuse)
    with pytest.raises(up.UpstreamFailure) as info:
        await up.list_models(EP)
    assert "api.example.test:8443" in info.value.error.message
    assert info.value.error.retryable is True


# --------------------------------------------------------------------------- logprobs


def lp_chunk(content: str, logprobs: Any, index: int = 0) -> str:
    choice = {"index": index, "delta": {"content": content}, "logprobs": logprobs}
    return f"data: {json.dumps({'choices': [choice]}, ensure_ascii=False)}\n\n"


def entry(token: str, logprob: float, *top: tuple[str, float]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }


async def test_chat_logprobs_in_a_stream() -> None:
    use(
        sse(
            ROLE,
            lp_chunk("Hi", {"content": [entry("Hi", -0.1, ("Hello", -2.5), ("Hi", -0.1))]}),
            # Alternatives arrive in any order; they come out most likely first.
            lp_chunk(" there", {"content": [entry(" there", -1.2, (" all", -3.0), (" x", -0.4))]}),
            lp_chunk("!", None),  # null: nothing
            lp_chunk("?", {"content": None, "refusal": None}),
            lp_chunk(".", {"content": []}),
            lp_chunk("é", {"content": [entry("é", -0.5)]}, index=1),
            chunk(finish="stop"),
            DONE,
        )
    )
    events = await collect()
    assert events == [
        up.TextDelta("Hi"),
        up.Logprobs(
            0,
            [
                {
                    "token": "Hi",
                    "logprob": -0.1,
                    "top": [{"token": "Hi", "logprob": -0.1}, {"token": "Hello", "logprob": -2.5}],
                }
            ],
        ),
        up.TextDelta(" there"),
        up.Logprobs(
            0,
            [
                {
                    "token": " there",
                    "logprob": -1.2,
                    "top": [{"token": " x", "logprob": -0.4}, {"token": " all", "logprob": -3.0}],
                }
            ],
        ),
        up.TextDelta("!"),
        up.TextDelta("?"),
        up.TextDelta("."),
        up.TextDelta("é", choice=1),
        up.Logprobs(1, [{"token": "é", "logprob": -0.5, "top": []}]),
        up.Finish("stop"),
    ]


async def test_chat_logprobs_in_a_full_completion() -> None:
    content = [entry("A", -0.01, ("A", -0.01)), entry("\n", -2.0), entry("B", -0.3)]
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A\nB"},
                "logprobs": {"content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ]
    }
    use(reply(200, json.dumps(completion), "application/json"))
    events = await collect()
    assert events == [
        up.TextDelta("A\nB"),
        up.Logprobs(
            0,
            [
                {"token": "A", "logprob": -0.01, "top": [{"token": "A", "logprob": -0.01}]},
                {"token": "\n", "logprob": -2.0, "top": []},
                {"token": "B", "logprob": -0.3, "top": []},
            ],
        ),
        up.Finish("stop"),
    ]


async def test_legacy_completion_logprobs() -> None:
    def legacy(text: str, logprobs: Any) -> str:
        choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": None}
        return f"data: {json.dumps({'object': 'text_completion', 'choices': [choice]})}\n\n"

    use(
        sse(
            legacy(
                "Once upon",
                {
                    # An echoed prompt's first token has no logprob.
                    "tokens": ["Once", " upon"],
                    "token_logprobs": [None, -0.7],
                    "top_logprobs": [None, {" in": -1.9, " upon": -0.7, " at": -2.2}],
                    "text_offset": [0, 4],
                },
            ),
            legacy(" a", {"tokens": [" a"], "token_logprobs": [-0.05], "top_logprobs": None}),
            legacy(" time", None),
            DONE,
        )
    )
    events = await collect()
    assert events == [
        up.TextDelta("Once upon"),
        up.Logprobs(
            0,
            [
                {"token": "Once", "logprob": 0.0, "top": []},
                {
                    "token": " upon",
                    "logprob": -0.7,
                    "top": [
                        {"token": " upon", "logprob": -0.7},
                        {"token": " in", "logprob": -1.9},
                        {"token": " at", "logprob": -2.2},
                    ],
                },
            ],
        ),
        up.TextDelta(" a"),
        up.Logprobs(0, [{"token": " a", "logprob": -0.05, "top": []}]),
        up.TextDelta(" time"),
    ]


async def test_odd_logprob_values_are_normalised() -> None:
    content = [
        {"token": "a", "logprob": float("-inf"), "top_logprobs": [{"token": "b", "logprob": 1e-9}]},
        {"bytes": [0xE2, 0x9C, 0xA8], "logprob": "oops", "top_logprobs": "nope"},
        "not a dict",
        {"token": "c", "logprob": -1e6, "top_logprobs": [{"token": "d"}, None]},
    ]
    # Python's json writes -Infinity, as some servers do.
    use(sse(lp_chunk("x", {"content": content}), DONE))
    [_, logprobs] = await collect()
    assert logprobs == up.Logprobs(
        0,
        [
            {"token": "a", "logprob": -9999.0, "top": [{"token": "b", "logprob": 0.0}]},
            {"token": "✨", "logprob": 0.0, "top": []},
            {"token": "c", "logprob": -9999.0, "top": [{"token": "d", "logprob": 0.0}]},
        ],
    )


# --------------------------------------------------------------------------- raw capture


async def collect_raw(body: dict[str, Any] = BODY) -> tuple[list[Any], list[str]]:
    raw: list[str] = []
    async with contextlib.aclosing(up.stream_chat(EP, body, raw=raw)) as events:
        return [event async for event in events], raw


async def test_raw_capture_records_each_data_payload_as_sent() -> None:
    first = '{"choices":[{"index":0,"delta":{"content":"Hé"}}]}'
    use(
        sse(
            ": keep-alive\n\n",
            f"data: {first}\r\n\r\n",
            'event: message\ndata: {"choices": []}\n\n',
            "data:   \n\n",
            DONE,
        )
    )
    events, raw = await collect_raw()
    assert events == [up.TextDelta("Hé")]
    assert raw == [first, '{"choices": []}', "  ", "[DONE]"]


async def test_raw_capture_of_json_and_error_answers() -> None:
    completion = json.dumps({"choices": [{"index": 0, "message": {"content": "ok"}}]})
    use(reply(200, completion, "application/json"))
    events, raw = await collect_raw()
    assert events == [up.TextDelta("ok")]
    assert raw == [completion]

    error = json.dumps({"error": {"message": "bad key", "type": "auth"}})
    use(reply(401, error, "application/json"))
    events, raw = await collect_raw()
    assert [e.message for e in events] == ["bad key"]
    assert raw == [error]

    use(reply(200, "<html>login</html>", "text/html"))
    _, raw = await collect_raw()
    assert raw == ["<html>login</html>"]


async def test_raw_capture_in_chat_once() -> None:
    completion = json.dumps({"choices": [{"index": 0, "message": {"content": "ok"}}]})
    use(reply(200, completion, "application/json"))
    raw: list[str] = []
    assert await up.chat_once(EP, BODY, raw=raw) == json.loads(completion)
    assert raw == [completion]

    use(reply(503, "upstream busy", "text/plain"))
    raw = []
    with pytest.raises(up.UpstreamFailure):
        await up.chat_once(EP, BODY, raw=raw)
    assert raw == ["upstream busy"]


async def test_raw_capture_stops_after_2000_entries() -> None:
    parts = [lp_chunk(str(i % 10), None) for i in range(2500)]
    use(sse(*parts, DONE))
    events, raw = await collect_raw()
    assert len(events) == 2500  # parsing goes on; only recording stops
    assert len(raw) == up.client.RAW_MAX_ENTRIES + 1 == 2001
    assert raw[:2000] == [p.removeprefix("data: ").strip() for p in parts[:2000]]
    assert raw[-1] == "… (truncated)"


async def test_raw_capture_stops_at_1_mb() -> None:
    big = "é" * 150_000  # 300,000 bytes of UTF-8 in each chunk's content
    parts = [lp_chunk(big, None) for _ in range(5)]
    use(sse(*parts, DONE))
    events, raw = await collect_raw()
    assert text(events) == big * 5
    assert raw[-1] == "… (truncated)"
    assert len(raw) == 5  # three whole chunks, the start of the fourth, the marker
    assert raw[:3] == [p.removeprefix("data: ").strip() for p in parts[:3]]
    assert parts[3].removeprefix("data: ").startswith(raw[3])
    assert sum(len(r.encode()) for r in raw[:-1]) <= 1024 * 1024
    assert sum(len(r.encode()) for r in raw[:-1]) > 1024 * 1024 - 4


async def test_nothing_is_recorded_without_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_recorder(out: list[str]) -> None:
        raise AssertionError("a recorder was made without raw=")

    monkeypatch.setattr(up.bodies, "_RawRecorder", no_recorder)  # where _recorder looks it up
    use(sse(ROLE, chunk({"content": "x"}), DONE))
    assert await collect() == [up.TextDelta("x")]
    use(reply(500, "boom", "text/plain"))
    with pytest.raises(up.UpstreamFailure):
        await up.chat_once(EP, BODY)
