"""The client against the fake server on a real socket (``python -m chat.fake_upstream``)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.upstream import (
    Endpoint,
    Finish,
    TextDelta,
    aclose_client,
    chat_once,
    get_client,
    list_models,
    stream_chat,
)

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake upstream exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"fake upstream did not listen on {port} within {timeout} s")


class LiveFake:
    def __init__(self, port: int, log: Path) -> None:
        self.endpoint = Endpoint(f"http://127.0.0.1:{port}/v1/", api_key="sk-live")
        self.log = log

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text())
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not in the server log:\n{self.log.read_text()}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFake]:
    port = _free_port()
    log = tmp_path_factory.mktemp("fake") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chat.fake_upstream", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(port, proc)
        yield LiveFake(port, log)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await aclose_client()


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "demo-fast", "messages": [{"role": "user", "content": prompt}], **extra}


def _pool_connections() -> list[Any]:
    # httpx keeps its connection pool private; reaching in is the only way to check it.
    return list(get_client()._transport._pool.connections)  # type: ignore[attr-defined]


async def test_streamed_text_equals_the_non_streamed_reply(live: LiveFake) -> None:
    prompt = "How does a lighthouse work? ✨ Explain briefly."
    streamed = []
    finishes = []
    async with contextlib.aclosing(
        stream_chat(
            live.endpoint, chat(prompt, stream=True, stream_options={"include_usage": True})
        )
    ) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                streamed.append(event.text)
            elif isinstance(event, Finish):
                finishes.append(event.reason)
    completion = await chat_once(live.endpoint, chat(prompt, stream=False))
    assert len(streamed) > 20
    assert "".join(streamed) == completion["choices"][0]["message"]["content"]
    assert finishes == ["stop"]
    assert await list_models(live.endpoint) == ["demo", "demo-fast", "demo-slow"]


async def test_stopping_mid_stream_is_noticed_by_the_server(live: LiveFake) -> None:
    slow = chat("Count slowly", stream=True)
    # Held after 5 tokens by a gate nobody opens: the reply can only end by the client
    # going away, so the server's log line (not a clock) proves the stop reached it.
    gate = f"never-{uuid.uuid4().hex[:16]}"
    endpoint = Endpoint(
        live.endpoint.base_url,
        headers={"x-fake": json.dumps({"tokens": 400, "tps": 40, "ttft_ms": 0,
                                       "hold_after": 5, "gate": gate})},
    )  # fmt: skip
    received = 0
    async with contextlib.aclosing(stream_chat(endpoint, slow)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                received += 1
                if received == 3:
                    break

    # The server hears the disconnect and stops generating, held where the gate holds it.
    stopped = live.wait_for_log(r"client went away; stopped after (\d+) tokens")
    assert 3 <= int(stopped.group(1)) <= 5
    # The abandoned connection is not left busy in the pool...
    assert all(c.is_idle() or c.is_closed() for c in _pool_connections())
    # ...and the next request goes through normally.
    events = [e async for e in stream_chat(live.endpoint, chat("Again", stream=True))]
    assert isinstance(events[-1], Finish)
    assert all(c.is_idle() for c in _pool_connections())
