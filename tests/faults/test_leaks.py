"""After many faulty runs nothing is left behind: no asyncio task, no connection checked
out of the pool, no socket held open at the server beyond the pool's idle ones."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import httpcore
import pytest
from channels.db import database_sync_to_async

from chat import runs, turns
from chat.upstream import client as upstream_client

from .catalogue import FAULTS, base_url
from .runner import make_conversation, make_profile

pytestmark = pytest.mark.django_db(transaction=True)

N_RUNS = 1000
PARALLEL = 25
# Timeout faults are part of the mix; short deadlines keep the whole loop quick.
QUICK = {"first_byte_timeout": 0.15, "idle_timeout": 0.15}


def network_pool(client) -> httpcore.AsyncConnectionPool:
    pool = client._transport._pool  # httpx.AsyncHTTPTransport -> httpcore pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    return pool


def busy_connections(pool: httpcore.AsyncConnectionPool) -> list:
    """Connections with a request in flight (neither idle in the pool nor closed)."""
    return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]


def foreign_tasks(baseline: set[asyncio.Task], server) -> list[asyncio.Task]:
    """Tasks started since ``baseline``, but for the test's own and the server's."""
    return [
        t
        for t in asyncio.all_tasks() - baseline
        if t is not asyncio.current_task() and not server.owns(t)
    ]


async def settled(baseline: set[asyncio.Task], server, keep: tuple = ()) -> None:
    """Wait until every task started since ``baseline`` has ended (the run's task is
    awaited already; what may still be ending is its endpoint's side, e.g. the in-process
    fake's ASGI task, which ends once it hears the client go away). A task that never
    ends is a leak: after the safety net the caller's assertion lists it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):  # a safety net only
            while [t for t in foreign_tasks(baseline, server) if t not in keep]:
                await asyncio.sleep(0.02)


@database_sync_to_async
def _turn(conversation, text):
    _, placeholders = turns.turn_send(conversation=conversation, content=text)
    return placeholders[0].pk


async def one_run(conversation, text: str) -> str:
    run = await runs.run_start(await _turn(conversation, text))
    await asyncio.wait_for(run.task, 10)
    return text


async def test_the_detectors_see_a_leak(fault_server):
    """The checks below can fail: a stream left open is a busy connection and a task."""
    from .catalogue import BY_NAME

    client = upstream_client.get_client()
    baseline = set(asyncio.all_tasks())
    url = fault_server.url + "/chat/completions"
    body = {"messages": [{"role": "user", "content": BY_NAME["idle_mid_stream"].prompt()}]}
    async with client.stream("POST", url, json=body) as response:
        await response.aiter_bytes().__anext__()
        assert len(busy_connections(network_pool(client))) == 1
        leaked = asyncio.create_task(asyncio.sleep(30))
        assert foreign_tasks(baseline, fault_server) == [leaked]
        leaked.cancel()
    assert busy_connections(network_pool(client)) == []


async def test_an_orphaned_pool_connection_is_reclaimed_and_a_live_one_kept(fault_server):
    """httpcore 1.0.9 can leave a connection that no request owns after a cancel
    (encode/httpcore#1093): the sweep closes exactly those, never one in flight."""
    from urllib.parse import urlsplit

    from .catalogue import BY_NAME

    client = upstream_client.get_client()
    pool = network_pool(client)
    port = urlsplit(fault_server.url).port
    orphan = pool.create_connection(httpcore.Origin(b"http", b"127.0.0.1", port))
    pool._connections.append(orphan)  # the shape the bug leaves: owned by no request
    assert busy_connections(pool) == [orphan]

    url = fault_server.url + "/chat/completions"
    body = {"messages": [{"role": "user", "content": BY_NAME["idle_mid_stream"].prompt()}]}
    streaming = asyncio.Event()

    async def endless() -> None:
        async with upstream_client._stream("POST", url, json=body) as response:
            await response.aiter_bytes().__anext__()
            streaming.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(endless())
    await asyncio.wait_for(streaming.wait(), 10)
    live = [c for c in busy_connections(pool) if c is not orphan]
    assert len(live) == 1
    assert await upstream_client.reclaim_orphaned_connections(client) == 1
    assert busy_connections(pool) == live  # the request in flight kept its connection

    pool._connections.append(orphan := pool.create_connection(orphan._origin))
    task.cancel()  # a cancelled request sweeps on its way out
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert busy_connections(pool) == []
    assert orphan not in pool.connections


async def test_no_leaks_after_many_faulty_runs(owner, fault_server, monkeypatch, settings):
    # One user, a thousand answers in a minute: the flood limits are tested elsewhere.
    settings.RUNS_PER_USER_MAX = 0
    settings.ANSWERS_PER_MINUTE = 0
    # Retries before the first byte are part of the run; no need to wait between them here.
    monkeypatch.setattr(runs.run, "BACKOFF", (0.0,))  # where Run._retry_delay looks
    monkeypatch.setattr(runs.run, "RETRY_AFTER_CAP", 0.0)
    profiles = {}
    for fault in FAULTS:
        kwargs = {
            **fault.endpoint_kwargs(),
            **{k: v for k, v in QUICK.items() if k in fault.timeouts},
        }
        profiles[fault.name] = await make_profile(
            owner, name=fault.name, base_url=base_url(fault, fault_server), **kwargs
        )
    # Warm up: the process's run mailbox and the pooled client exist from now on.
    before = set(asyncio.all_tasks())
    await one_run(await make_conversation(owner, profiles["http_401"]), FAULTS[4].prompt())
    mailbox = (await runs.broadcast.RunControl.get()).task  # lives as long as the loop
    await settled(before, fault_server, keep=(mailbox,))
    baseline = set(asyncio.all_tasks())
    requests_before = len(fault_server.requests)

    queue = itertools.islice(itertools.cycle(FAULTS), N_RUNS)

    async def worker() -> int:
        done = 0
        for fault in queue:
            conversation = await make_conversation(owner, profiles[fault.name])
            await one_run(conversation, fault.prompt())
            done += 1
        return done

    counts = await asyncio.gather(*(worker() for _ in range(PARALLEL)))
    assert sum(counts) == N_RUNS
    await settled(baseline, fault_server)

    leaked = foreign_tasks(baseline, fault_server)
    assert leaked == [], [t.get_coro() for t in leaked]
    assert runs._registry == {}, "every run left the registry"
    client = upstream_client.get_client()
    pool = network_pool(client)
    assert busy_connections(pool) == []
    assert pool._requests == [], "no request waits for a connection"
    # The server holds no more sockets than the pool keeps idle for reuse...
    idle = [c for c in pool.connections if c.is_idle()]
    assert len(fault_server.open) <= len(idle)
    raw_faults = sum(1 for f in itertools.islice(itertools.cycle(FAULTS), N_RUNS)
                     if not f.fake and f.base_url is None)  # fmt: skip
    # Each raw fault reached the server; a transient one up to MAX_ATTEMPTS times.
    made = len(fault_server.requests) - requests_before
    assert raw_faults <= made <= raw_faults * runs.MAX_ATTEMPTS
    # ...and none once the pool is closed.
    await upstream_client.aclose_client()
    async with asyncio.timeout(60):  # a safety net only: polls until the server sees them close
        while fault_server.open:
            await asyncio.sleep(0.02)
