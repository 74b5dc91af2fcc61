"""Hostile endpoints: answers built to exhaust memory or to hold a run open forever.

Every byte read from an endpoint is bounded (``UPSTREAM_MAX_BYTES`` inflated bytes per
answer, ``UPSTREAM_MAX_EVENT_BYTES`` per line and without any progress of the answer),
only progress moves the idle timer, and ``ANSWER_MAX_SECONDS`` ends any answer. Each
ends the answer with a clear error and keeps the text that arrived.

No test waits a fixed time or checks elapsed time: each hostile stream never ends by
itself, so only the bound under test can end it (``asyncio.wait_for`` only keeps a
broken bound from hanging the suite).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import zlib

import pytest
from channels.db import database_sync_to_async

from chat import runs, turns
from chat.models import Message
from chat.upstream import (
    Endpoint,
    TextDelta,
    UpstreamError,
    UpstreamFailure,
    list_models,
    stream_chat,
)
from tests.conftest import ROOT

from .hostile import (
    empty_deltas,
    endless_line,
    endless_text,
    gzip_bomb,
    keepalive_flood,
    serve_compressed,
)
from .rawserver import RawServer, delta
from .runner import connect, last_answer, make_conversation, make_profile, send, until_done

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
PARTIAL_EVENT = b"data: " + json.dumps(delta("Partial ")).encode() + b"\n\n"
# Generous: only the bound under test may end these streams.
PATIENT = {"first_byte_timeout": 60.0, "idle_timeout": 60.0}
NEVER = 60  # seconds: a safety net against hanging, never reached when the bound works


@pytest.fixture
async def server():
    server = await RawServer().start()
    yield server
    await server.close()


async def collect(endpoint: Endpoint) -> tuple[str, list[UpstreamError]]:
    events = []

    async def read() -> None:
        async with contextlib.aclosing(stream_chat(endpoint, BODY)) as stream:
            async for event in stream:
                events.append(event)

    await asyncio.wait_for(read(), NEVER)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, [e for e in events if isinstance(e, UpstreamError)]


async def test_a_gzip_bomb_line_is_cut_at_the_event_cap(server, settings):
    # 10 MB of 'A' without a newline, ~10 KB on the wire.
    server.handler = serve_compressed(gzip_bomb(10 * 2**20, prefix=PARTIAL_EVENT + b"data: "))
    text, [error] = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text == "Partial "
    assert error.type == "response_too_large" and not error.retryable
    assert "UPSTREAM_MAX_EVENT_BYTES" in error.message


async def test_an_answer_past_the_byte_cap_is_cut_and_its_text_kept(server, settings):
    settings.UPSTREAM_MAX_BYTES = 2 * 2**20
    one = json.dumps(delta("A")).encode()
    # Valid events (each is progress) inflating to 20 MB: only the answer's cap stops it.
    bomb = gzip_bomb(20 * 2**20, prefix=b"", fill=b"data: " + one + b"\n\n")
    server.handler = serve_compressed(bomb)
    text, [error] = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text.startswith("AAAA") and len(text) < 2 * 2**20 // len(one) + 1
    assert error.type == "response_too_large"
    assert "UPSTREAM_MAX_BYTES" in error.message


async def test_an_endless_line_ends_with_an_error_and_keeps_the_text(server, settings):
    settings.UPSTREAM_MAX_EVENT_BYTES = 256 * 1024
    server.handler = endless_line
    text, [error] = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text == "Partial "
    assert error.type == "response_too_large"
    assert "UPSTREAM_MAX_EVENT_BYTES" in error.message


async def test_keepalives_alone_are_not_progress(server, settings):
    # Comments and blank lines, fast enough that the idle timer alone would never fire.
    settings.UPSTREAM_MAX_EVENT_BYTES = 256 * 1024
    server.handler = keepalive_flood
    text, [error] = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text == "Partial "
    assert error.type == "response_too_large" and "without any answer" in error.message


async def test_an_unknown_content_encoding_is_refused_clearly(server):
    server.handler = serve_compressed(b"\x8b\x00\x80garbage", encoding="br")
    text, [error] = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text == ""
    assert "Content-Encoding" in error.message and "br" in error.message


async def test_only_codings_we_can_bound_are_asked_for(server):
    server.handler = serve_compressed(zlib.compress(PARTIAL_EVENT), encoding="deflate")
    text, _ = await collect(Endpoint(base_url=server.url, **PATIENT))
    assert text == "Partial "  # deflate (zlib-wrapped) is read
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def test_a_bombed_model_list_is_refused_at_the_json_cap(server, settings):
    settings.UPSTREAM_MAX_BYTES = 2**20

    async def serve(req, conn) -> bool:
        bomb = gzip_bomb(50 * 2**20, prefix=b'{"data": ["')
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        await conn.respond(200, bomb, headers)
        return True

    server.handler = serve
    with pytest.raises(UpstreamFailure, match="larger than 1 MB"):
        await asyncio.wait_for(list_models(Endpoint(base_url=server.url, **PATIENT)), NEVER)


async def test_empty_deltas_do_not_hold_off_the_idle_timeout(server):
    server.handler = empty_deltas  # an event every few ms, none of them progress
    endpoint = Endpoint(base_url=server.url, first_byte_timeout=60, idle_timeout=0.3)
    text, [error] = await collect(endpoint)
    assert text == "Partial "
    assert error.type == "timeout" and "idle" in error.message


async def test_an_answer_past_its_time_limit_ends_and_keeps_its_text(owner, server, settings):
    settings.ANSWER_MAX_SECONDS = 0.5
    server.handler = endless_text  # text every few ms, forever: the idle timer never fires
    profile = await make_profile(owner, base_url=server.url, **PATIENT)
    conversation = await make_conversation(owner, profile)
    _, [placeholder] = await database_sync_to_async(turns.turn_send)(
        conversation=conversation, content="go"
    )
    run = await runs.run_start(placeholder.pk)
    await asyncio.wait_for(run.task, NEVER)
    answer = await database_sync_to_async(Message.objects.get)(pk=placeholder.pk)
    assert answer.status == "error" and answer.error["type"] == "answer_time_limit"
    assert "ANSWER_MAX_SECONDS" in answer.error["message"]
    assert answer.content.startswith("Partial tick")


async def test_a_bomb_ends_the_lane_with_an_error_and_the_partial_text(owner, server):
    server.handler = serve_compressed(gzip_bomb(10 * 2**20, prefix=PARTIAL_EVENT + b"data: "))
    profile = await make_profile(owner, base_url=server.url, **PATIENT)
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, "hello")
    frames = await until_done(comm, timeout=NEVER)
    await comm.disconnect()
    answer = await last_answer(conversation)
    assert answer.status == "error" and answer.content == "Partial "
    assert answer.error["type"] == "response_too_large"
    assert 'data-status="error"' in frames[-1] and "UPSTREAM_MAX_EVENT_BYTES" in frames[-1]
    assert len(server.requests) == 1  # never retried


def test_a_400_mb_gzip_bomb_leaves_memory_flat():
    # In a fresh interpreter, so the peak (VmHWM) is this answer's alone.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.rss_probe", "400"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["grown_mb"] < 100, probe
    assert "UPSTREAM_MAX_EVENT_BYTES" in (probe["error"] or ""), probe
