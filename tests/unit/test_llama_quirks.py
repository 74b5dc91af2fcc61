"""What llama.cpp's llama-server sends that OpenAI does not, replayed with httpx.MockTransport
(the chunks as a real llama-server sent them; tests/peers runs the real one)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chat.upstream import (
    Endpoint,
    Finish,
    TextDelta,
    UpstreamError,
    Usage,
    aclose_client,
    set_transport,
    stream_chat,
)

EP = Endpoint("http://llama.test:8080/v1")
TIMINGS = {"prompt_n": 12, "prompt_ms": 30.1, "predicted_n": 3, "predicted_ms": 41.7,
           "predicted_per_second": 71.9}  # fmt: skip


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await aclose_client()
    set_transport(None)


def chunk(index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {
        "choices": [{"finish_reason": finish, "index": index, "delta": delta}],
        "created": 1796305146,
        "id": "chatcmpl-llama",
        "model": "gemma-3-270m",
        "system_fingerprint": "b11434-unknown",
        "object": "chat.completion.chunk",
    }


def usage_chunk(prompt: int, completion: int, **extra: Any) -> dict[str, Any]:
    usage = {"completion_tokens": completion, "prompt_tokens": prompt,
             "total_tokens": prompt + completion}  # fmt: skip
    return {"choices": [], "id": "chatcmpl-llama", "object": "chat.completion.chunk",
            "usage": usage, **extra}  # fmt: skip


def serve(*objs: dict[str, Any], status: int = 200) -> None:
    data = b"".join(b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": "text/event-stream"},
                              content=data + b"data: [DONE]\n\n")  # fmt: skip

    set_transport(httpx.MockTransport(handler))


async def events(body: dict[str, Any] | None = None) -> list[Any]:
    body = body or {"model": "gemma-3-270m", "messages": [], "stream": True}
    async with contextlib.aclosing(stream_chat(EP, body)) as stream:
        return [event async for event in stream]


async def test_a_first_chunk_with_content_null_and_timings_on_the_last_are_harmless():
    serve(
        chunk(role="assistant", content=None),
        chunk(content="Hel"),
        chunk(content="lo"),
        chunk(finish="length"),
        usage_chunk(12, 3, timings=TIMINGS),
    )
    found = await events()
    assert [e.text for e in found if isinstance(e, TextDelta)] == ["Hel", "lo"]
    assert Finish("length") in found
    usage = [e for e in found if isinstance(e, Usage)]
    assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in usage] == [(12, 3, 15)]
    assert not any(isinstance(e, UpstreamError) for e in found)


async def test_one_usage_chunk_per_choice_adds_up_for_n_2():
    # n=2 streamed: each choice ends with its own finish chunk and its own usage chunk.
    serve(
        chunk(0, role="assistant", content=None),
        chunk(1, role="assistant", content=None),
        chunk(0, content="Waves"),
        chunk(1, content="Tides roll"),
        chunk(0, finish="stop"),
        usage_chunk(9, 4),
        chunk(1, finish="length"),
        usage_chunk(9, 7, timings=TIMINGS),
    )
    found = await events({"model": "m", "messages": [], "stream": True, "n": 2})
    last = [e for e in found if isinstance(e, Usage)][-1]
    # What a run keeps (the last usage): both choices' tokens, the prompt once.
    assert (last.prompt_tokens, last.completion_tokens, last.total_tokens) == (9, 11, 20)
    assert last.raw["completion_tokens"] == 11


async def test_a_repeated_usage_chunk_of_one_choice_is_not_added_twice():
    serve(chunk(content="Hi"), chunk(finish="stop"), usage_chunk(5, 2), usage_chunk(5, 2))
    last = [e for e in await events() if isinstance(e, Usage)][-1]
    assert (last.prompt_tokens, last.completion_tokens, last.total_tokens) == (5, 2, 7)


async def test_usage_on_every_chunk_with_choices_is_cumulative_not_added():
    # vLLM's continuous usage: running totals on chunks that carry choices.
    first, second = chunk(0, content="a"), chunk(1, content="b", finish="stop")
    first["usage"] = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    end = chunk(0, finish="stop")
    end["usage"] = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    serve(first, second, end)
    last = [e for e in await events() if isinstance(e, Usage)][-1]
    assert last.completion_tokens == 2


async def test_an_image_part_is_refused_with_http_500_and_the_servers_words():
    message = (
        "image input is not supported - hint: if this is unexpected, you may need to "
        "provide the mmproj"
    )
    error = {"error": {"code": 500, "message": message, "type": "server_error"}}
    set_transport(httpx.MockTransport(lambda request: httpx.Response(500, json=error)))
    (found,) = await events()
    assert isinstance(found, UpstreamError)
    assert (found.status, found.message, found.type) == (500, message, "server_error")
    assert not found.retryable  # a 500 about the request: trying again cannot help
