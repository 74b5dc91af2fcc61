"""Compatibility probes are bounded: a few at a time, each with its own time limit, and a
server's own trouble (5xx, 429, 401, silence) is "could not tell", never "not supported"."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from chat.compat import CONCURRENCY, INCONCLUSIVE, PROBE_KEYS, probe_endpoint, run_check
from chat.upstream import Endpoint, aclose_client, set_transport


@pytest.fixture(autouse=True)
async def _clean_transport() -> AsyncIterator[None]:
    yield
    await aclose_client()
    set_transport(None)


def ok_reply(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/models"):
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})
    body = json.loads(request.content)
    if body.get("stream"):
        chunk = {"choices": [{"index": 0, "delta": {"content": "OK"}, "finish_reason": "stop"}]}
        sse = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse)
    message = {"role": "assistant", "content": "OK"}
    return httpx.Response(
        200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    )


async def test_at_most_four_probes_at_a_time_and_more_than_one():
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            # Held for some turns of the event loop, not for a time: the probes started
            # together are all in flight by then, however slow the machine.
            for _ in range(50):
                await asyncio.sleep(0)
            return ok_reply(request)
        finally:
            in_flight -= 1

    set_transport(httpx.MockTransport(handler))
    report = await run_check(Endpoint("http://slowish.test/v1"), "m")
    assert len(report["results"]) == len(PROBE_KEYS)
    assert CONCURRENCY == 4
    assert 1 < peak <= CONCURRENCY


async def test_each_probe_has_its_own_time_limit():
    async def handler(request: httpx.Request) -> httpx.Response:
        if b"seed" in request.content:
            await asyncio.Event().wait()  # only the seed probe hangs, for good
        return ok_reply(request)

    set_transport(httpx.MockTransport(handler))
    # The limit is what ends the seed probe (it never answers), so the run returning at
    # all is the proof; 2 s leaves the answering probes room on a busy machine.
    async with asyncio.timeout(60):  # a safety net only
        report = await run_check(Endpoint("http://hangs.test/v1"), "m", timeout=2)
    rows = {r["key"]: r for r in report["results"]}
    assert rows["seed"]["status"] == INCONCLUSIVE
    assert "within 2 s" in rows["seed"]["summary"]
    assert rows["chat"]["status"] != INCONCLUSIVE  # the others were not held up


def test_the_profile_timeouts_are_capped_for_probing():
    slow = Endpoint("http://x.test/v1", connect_timeout=60, first_byte_timeout=600,
                    idle_timeout=300)  # fmt: skip
    capped = probe_endpoint(slow)
    assert (capped.connect_timeout, capped.first_byte_timeout, capped.idle_timeout) == (10, 20, 20)
    quick = Endpoint("http://x.test/v1", connect_timeout=2, first_byte_timeout=5, idle_timeout=3)
    assert probe_endpoint(quick) == quick


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"error": {"message": "overloaded", "type": "server_error"}}),
        (429, {"error": {"message": "slow down", "type": "requests"}}),
        (401, {"error": {"message": "bad key", "type": "invalid_request_error"}}),
    ],
)
async def test_the_servers_own_trouble_is_inconclusive(status, body):
    set_transport(httpx.MockTransport(lambda request: httpx.Response(status, json=body)))
    report = await run_check(Endpoint("http://trouble.test/v1"), "m")
    found = {r["key"]: r for r in report["results"]}
    assert {r["status"] for r in found.values()} == {INCONCLUSIVE}
    assert found["stream_usage"]["http_status"] == status
    assert body["error"]["message"] in found["stream_usage"]["summary"]


async def test_a_server_that_is_not_there_is_inconclusive():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    set_transport(httpx.MockTransport(refuse))
    report = await run_check(Endpoint("http://gone.test/v1"), "m")
    assert {r["status"] for r in report["results"]} == {INCONCLUSIVE}
    assert "Could not connect" in report["results"][1]["summary"]
