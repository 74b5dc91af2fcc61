"""The pooled httpx clients (one per event loop) and the orphaned-connection sweep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from . import netguard
from .asgi_transport import StreamingASGITransport
from .registry import clients as _clients

if TYPE_CHECKING:
    from chat.fake_upstream import FakeUpstream


FAKE_HOST = "fake.invalid"

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=40, keepalive_expiry=30)

# Connections belong to the event loop that opened them, so there is one client per loop
# (in the server that is one per process; tests and async_to_sync create more loops).
# The loop -> client map itself lives in ``registry`` (netguard clears it too).
_transport: httpx.AsyncBaseTransport | None = None


def fake_app() -> FakeUpstream:
    """The in-process fake behind ``http://fake.invalid``; tests read its ``.requests``.

    Imported here, not at module level: the production client does not load the fake
    until a client (with its in-process ``fake.invalid`` mount) is built."""
    # Late on purpose, not for a cycle (tests/unit/test_upstream_imports.py checks it).
    from chat import fake_upstream

    return fake_upstream.app


def _fake_transport() -> httpx.AsyncBaseTransport:
    """The in-process transport that serves ``fake.invalid`` from the fake (no network)."""
    return StreamingASGITransport(fake_app())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def get_client() -> httpx.AsyncClient:
    loop = _running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for stale in [lp for lp in _clients if lp is not None and lp.is_closed()]:
            del _clients[stale]
        client = httpx.AsyncClient(
            # netguard: None (httpx's default) unless a guard setting is on.
            transport=_transport or netguard.transport(_LIMITS),
            mounts={f"all://{FAKE_HOST}": _fake_transport()},
            limits=_LIMITS,
            # Reads are unbounded here: stream_chat enforces first-byte and idle deadlines.
            timeout=httpx.Timeout(10, read=None),
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


def set_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route all non-fake requests through ``transport`` (tests); None restores the network.

    Existing clients are dropped, not closed: await ``aclose_client()`` first if a real
    connection pool was in use.
    """
    global _transport
    _transport = transport
    _clients.clear()


@contextlib.asynccontextmanager
async def _stream(method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
    """``client.stream(...)`` on the shared client, which also sweeps orphaned pooled
    connections whenever a request ends by an exception or a cancel (see below)."""
    client = get_client()
    try:
        async with client.stream(method, url, **kwargs) as response:
            yield response
    except BaseException:
        await reclaim_orphaned_connections(client)
        raise


async def reclaim_orphaned_connections(client: httpx.AsyncClient) -> int:
    """Close the pooled connections that no request owns; return how many.

    httpcore 1.0.9 leaves one behind when a request is cancelled after its connection
    was made but before the request was sent (encode/httpcore#1093, #1099): neither
    idle, closed nor available, it keeps a pool slot and a socket for good. Runs are
    cancelled all the time (Stop, first-byte and idle timeouts), so after each request
    that ends by an exception the pool is swept. A request in flight always owns its
    connection, so only true orphans are closed."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if connections is None or requests is None:
        return 0  # not an httpcore pool (a test transport), or httpcore changed shape
    owned = {id(getattr(r, "connection", None)) for r in requests}
    orphans = [c for c in connections if id(c) not in owned and not (c.is_idle() or c.is_closed())]
    for connection in orphans:
        connections.remove(connection)
    for connection in orphans:
        with contextlib.suppress(Exception):
            await connection.aclose()
    return len(orphans)


async def aclose_client() -> None:
    client = _clients.pop(_running_loop(), None)
    if client is not None:
        await client.aclose()
