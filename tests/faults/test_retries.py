"""Retries before the first byte of an answer, and never after.

Behaviour (chat/runs/run.py, Run._stream and Run._retry_delay):
- Before any event of the answer arrived (no text, reasoning or tool call), an
  ``UpstreamError`` that is retryable (429, 502, 503, 504, connection errors, connect
  timeouts; ``error.retryable``) is retried, at most MAX_ATTEMPTS times in all (3 is
  plenty), with the same request body.
- A 429's ``Retry-After`` (seconds) is honoured: the next attempt is made no sooner than
  that. A ``Retry-After`` above the cap (e.g. 20 s) is not waited for: the error is
  shown at once. Other retryable errors back off briefly (e.g. 0.5 s, then 1 s).
- Stop during the wait ends the run at once as ``stopped``, without another request.
- Once anything of the answer arrived, nothing is retried: a failure keeps the partial
  text and ends the run as ``error``.
- The final error is the last attempt's (status, provider message...).
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from chat.upstream import client as upstream_client

from .catalogue import BY_NAME, PARTIAL_TEXT, ok_stream
from .rawserver import Conn, RawServer, Request
from .runner import connect, last_answer, make_conversation, make_profile, send, until_done

pytestmark = pytest.mark.django_db(transaction=True)


def failing_first(status: int, headers: dict[str, str] | None = None, times: int = 1):
    """A handler that fails ``times`` times with ``status`` (OpenAI error body), then
    streams a good answer; it records when each request arrived."""
    seen: list[float] = []

    async def handler(req: Request, conn: Conn) -> bool:
        seen.append(time.monotonic())
        if len(seen) <= times:
            error = {"message": f"try again ({status})", "type": "server_error", "code": None}
            await conn.json(status, {"error": error}, headers)
            return True
        return await ok_stream(req, conn)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


async def run_turn(owner, base_url: str, text: str = "Hello", **profile_fields):
    profile = await make_profile(owner, base_url=base_url, **profile_fields)
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, text)
    frames = await until_done(comm, timeout=20)
    await comm.disconnect()
    return await last_answer(conversation), frames


class RetryWaits:
    """The waits the run asks for between attempts (``asyncio.sleep`` as run.py sees it).
    ``hold`` makes them last until cancelled, so Stop is tested against a wait that
    cannot end by itself; ``waiting`` is set once the run is in one."""

    def __init__(self, hold: bool = False) -> None:
        self.asked: list[float] = []
        self.cancelled = 0
        self.hold = hold
        self.waiting = asyncio.Event()

    async def sleep(self, delay: float) -> None:
        self.asked.append(delay)
        self.waiting.set()
        try:
            if self.hold:
                await asyncio.Event().wait()
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def __getattr__(self, name: str):  # everything else run.py uses from asyncio
        return getattr(asyncio, name)


@pytest.fixture
def retry_waits(monkeypatch) -> RetryWaits:
    from chat.runs import run

    waits = RetryWaits()
    monkeypatch.setattr(run, "asyncio", waits)
    return waits


@pytest.fixture
async def server():
    server = await RawServer().start()
    yield server
    await server.close()


# --------------------------------------------------------------------------- to build


async def test_a_429_is_retried_after_its_retry_after(owner, server, retry_waits):
    server.handler = failing_first(429, {"Retry-After": "1"})
    answer, _ = await run_turn(owner, server.url)
    assert answer.status == "complete", answer.error
    assert answer.content == "Recovered fine "
    assert retry_waits.asked == [1.0], "Retry-After: 1 was what the run waited for"
    seen = server.handler.seen
    assert len(seen) == 2
    # A lower bound only: a busy machine can make the gap longer, never shorter.
    assert seen[1] - seen[0] >= 0.95, "Retry-After: 1 was honoured"


@pytest.mark.parametrize("status", [502, 503])
async def test_a_502_or_503_before_the_first_byte_is_retried(owner, server, status):
    server.handler = failing_first(status)
    answer, _ = await run_turn(owner, server.url)
    assert answer.status == "complete", answer.error
    assert answer.content == "Recovered fine "
    assert len(server.handler.seen) == 2


async def test_a_connect_error_is_retried(owner, server, monkeypatch):
    server.handler = ok_stream
    real = httpx.AsyncHTTPTransport()
    attempts = []

    class FlakyConnect(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            attempts.append(request.url)
            if len(attempts) == 1:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            return await real.handle_async_request(request)

    upstream_client.set_transport(FlakyConnect())
    try:
        answer, _ = await run_turn(owner, server.url)
    finally:
        upstream_client.set_transport(None)
        await real.aclose()
    assert answer.status == "complete", answer.error
    assert len(attempts) == 2 and len(server.requests) == 1


async def test_all_attempts_failing_keeps_the_last_error(owner, server):
    server.handler = failing_first(503, times=99)
    answer, _ = await run_turn(owner, server.url)
    assert answer.status == "error"
    assert answer.error["status"] == 503 and "try again (503)" in answer.error["message"]
    assert 2 <= len(server.handler.seen) <= 5, "retried, a bounded number of times"


async def test_stop_during_the_retry_wait_ends_the_run_at_once(owner, server, retry_waits):
    # The wait is held until cancelled: the run can only end if Stop cuts it short.
    retry_waits.hold = True
    server.handler = failing_first(429, {"Retry-After": "3"})
    profile = await make_profile(owner, base_url=server.url)
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, "Hello")
    await asyncio.wait_for(retry_waits.waiting.wait(), 60)  # a safety net only
    await comm.send_to(text_data=json.dumps({"action": "stop"}))
    await until_done(comm, timeout=60)
    await comm.disconnect()
    answer = await last_answer(conversation)
    assert answer.status == "stopped"
    assert retry_waits.asked == [3.0] and retry_waits.cancelled == 1
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- never


@pytest.mark.parametrize(
    "name", ["reset_mid_stream", "cut_mid_body", "idle_mid_stream", "error_mid_stream"]
)
async def test_nothing_is_retried_once_text_arrived(owner, server, name):
    fault = BY_NAME[name]
    server.handler = fault.serve
    answer, _ = await run_turn(owner, server.url, fault.prompt(), **fault.endpoint_kwargs())
    assert answer.status == "error"
    assert answer.content == PARTIAL_TEXT
    # Retries happen inside the run, so by the time its answer is saved they are done.
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(owner, server, status):
    server.handler = failing_first(status, times=99)
    answer, _ = await run_turn(owner, server.url)
    assert answer.status == "error" and answer.error["status"] == status
    assert len(server.requests) == 1


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(owner, server, retry_waits):
    server.handler = failing_first(429, {"Retry-After": "3600"}, times=99)
    answer, _ = await run_turn(owner, server.url)
    assert retry_waits.asked == []  # no wait at all, and no second request
    assert len(server.handler.seen) == 1
    assert answer.status == "error" and answer.error["status"] == 429
    assert "try again (429)" in answer.error["message"]
