"""The fault matrix against ``chat.upstream.stream_chat``: real sockets (or the in-process
fake), and what the typed events say about each failure."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chat.upstream import Endpoint, Finish, TextDelta, UpstreamError, stream_chat

from .catalogue import FAULTS, base_url, chat_body
from .rawserver import RawServer, delta


async def collect(endpoint: Endpoint, body: dict) -> list:
    events = []
    async with contextlib.aclosing(stream_chat(endpoint, body)) as stream:
        async for event in stream:
            events.append(event)
    return events


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_stream_chat_reports_the_fault(fault, fault_server):
    endpoint = Endpoint(base_url=base_url(fault, fault_server), **fault.endpoint_kwargs())
    events = await collect(endpoint, chat_body(fault))

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == fault.partial
    errors = [e for e in events if isinstance(e, UpstreamError)]
    assert not any(isinstance(e, Finish) for e in events)
    if fault.silent_end:
        # Nothing says why the stream ended: the run must notice the missing finish.
        assert errors == []
        return
    assert len(errors) == 1, events
    (error,) = errors
    assert events[-1] is error, "an error is the last event"
    assert error.status == fault.status
    assert fault.message in error.message
    if fault.type is not None:
        assert error.type == fault.type
    if fault.code is not None:
        assert error.code == fault.code
    if fault.body is not None:
        assert error.body is not None and fault.body in error.body
        assert "<" not in error.body, "HTML is reduced to its text"
    assert error.retryable == fault.retryable
    if not fault.fake and fault.base_url is None:
        assert fault_server.requests, "the request reached the server"


async def test_the_raw_server_waits_until_the_client_has_read_what_it_sent():
    """What the reset faults wait for before the RST: the client's reads, not a time."""
    sent = asyncio.Event()
    waited: list[asyncio.Task] = []

    async def handler(request, conn) -> bool:
        await conn.sse_head()
        await conn.sse(delta("unread"))
        waited.append(asyncio.ensure_future(conn.read_by_client()))
        sent.set()
        await waited[0]
        return False

    server = await RawServer(handler=handler).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        # A client that pauses its reads: the bytes stay in its kernel receive queue.
        writer.transport.pause_reading()
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        await asyncio.wait_for(sent.wait(), 60)
        for _ in range(50):  # turns of the loop, not a time: the server would return now
            await asyncio.sleep(0)
        assert not waited[0].done()
        writer.transport.resume_reading()
        await asyncio.wait_for(waited[0], 60)
        assert b"unread" in await reader.read(4096)
    finally:
        writer.close()
        await server.close()
