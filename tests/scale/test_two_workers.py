"""Scale-out: two daphne workers on one PostgreSQL and one Redis, no sticky sessions.

A turn started on worker A streams to a tab on worker B, Stop pressed on B ends the run A
owns, and a tab that reconnects to B mid-answer converges to the saved text.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from channels.db import database_sync_to_async

from chat import conversations
from chat.fake_upstream import tokenize
from chat.models import EndpointProfile, Message
from tests.bench.wire import (
    DELTA,
    STOP_FRAME,
    fake_prompt,
    final_status,
    is_final,
    send_frame,
    session_key_for,
    streamed_text,
    ws_connect,
)

pytestmark = [pytest.mark.scale, pytest.mark.django_db(transaction=True)]
WAIT = 60  # a safety net only: every wait below is for a frame that does come


@pytest.fixture
def chat(django_user_model, fake_upstream_url) -> SimpleNamespace:
    user = django_user_model.objects.create_user("scale", password="a-long-passphrase-42")
    # The fake on its own port, not the one inside worker A: the test can open its gates.
    profile = EndpointProfile.objects.create(
        owner=user, name="Local fake", base_url=fake_upstream_url, default_model="demo"
    )
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    return SimpleNamespace(
        conversation=conversation, session=session_key_for(user), fake=fake_upstream_url
    )


def new_gate() -> str:
    return f"scale-{uuid.uuid4().hex[:16]}"


async def open_gate(chat: SimpleNamespace, gate: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{chat.fake}/fake/gates/{gate}", timeout=WAIT)
    assert response.json() == {"gate": gate, "open": True}


@contextlib.asynccontextmanager
async def tab(base: str, chat: SimpleNamespace) -> AsyncIterator:
    ws = await ws_connect(base, chat.conversation.pk, chat.session)
    try:
        yield ws
    finally:
        await ws.close()


async def recv(ws) -> str:
    async with asyncio.timeout(WAIT):
        return await ws.recv()


async def until_final(ws) -> list[str]:
    frames = []
    while not frames or not is_final(frames[-1]):
        frames.append(await recv(ws))
    return frames


@database_sync_to_async
def saved_answer(chat: SimpleNamespace) -> Message:
    return Message.objects.get(conversation=chat.conversation, role="assistant")


def deltas(frames: list[str]) -> list[str]:
    return [f for f in frames if f.startswith("<span")]


async def test_a_turn_started_on_one_worker_streams_to_a_tab_on_the_other(workers, chat):
    a, b = workers
    async with tab(a, chat) as sender, tab(b, chat) as watcher:
        # Held after 30 tokens until B has shown some of it: B's stream certainly has a
        # delta before the final render, however fast or slow the machine.
        gate = new_gate()
        held = fake_prompt("Across workers", tokens=120, tps=60, hold_after=30, gate=gate)
        await sender.send(send_frame(held))
        watched: list[str] = []
        while not streamed_text(watched):
            watched.append(await recv(watcher))
        shown_while_held = streamed_text(watched)
        await open_gate(chat, gate)
        watched += await until_final(watcher)
        sent = await until_final(sender)
    answer = await saved_answer(chat)
    assert answer.status == "complete" and answer.content
    # B shows the user's message, then the very same deltas A's tab got, then the render.
    assert any('data-role="user"' in f and "Across workers" in f for f in watched)
    assert not any(is_final(f) for f in watched[:-1]), "B got a render before the end"
    assert deltas(watched), "B got the final render but no stream"
    assert shown_while_held and len(shown_while_held) < len(answer.content)
    assert answer.content.startswith(shown_while_held)
    assert deltas(watched) == deltas(sent)
    assert streamed_text(watched) == streamed_text(sent) == answer.content
    assert final_status(watched[-1]) == final_status(sent[-1]) == "complete"
    assert not any('id="composer"' in f for f in watched)  # only the sender's form resets


async def test_stop_on_the_other_worker_stops_the_run(workers, chat):
    a, b = workers
    async with tab(a, chat) as sender, tab(b, chat) as stopper:
        # Held after 5 tokens by a gate nobody opens: only the Stop can end this answer.
        held = fake_prompt("Stop me from B", tokens=300, tps=40, hold_after=5, gate=new_gate())
        await sender.send(send_frame(held))
        seen: list[str] = []
        while not streamed_text(seen):
            seen.append(await recv(stopper))
        await stopper.send(STOP_FRAME)  # B owns no run: the Stop goes through Redis to A
        seen += await until_final(stopper)
        sent = await until_final(sender)
    answer = await saved_answer(chat)
    assert answer.status == "stopped"
    assert final_status(seen[-1]) == final_status(sent[-1]) == "stopped"
    assert answer.content and len(tokenize(answer.content)) < 300
    assert streamed_text(seen) == streamed_text(sent) == answer.content


async def test_a_tab_reconnecting_to_the_other_worker_converges(workers, chat):
    a, b = workers
    async with tab(a, chat) as sender:
        # Held after 20 tokens (well over 40 characters) until the reconnected tab has
        # its snapshot: the answer is still streaming then, and goes on after it.
        gate = new_gate()
        held = fake_prompt("Reconnect", tokens=150, tps=40, hold_after=20, gate=gate)
        await sender.send(send_frame(held))
        async with tab(b, chat) as first:
            seen: list[str] = []
            while len(streamed_text(seen)) < 40:
                seen.append(await recv(first))
        # The tab closed mid-answer; it comes back, on B again.
        async with tab(b, chat) as again:
            frames = [await recv(again)]
            await open_gate(chat, gate)
            if not is_final(frames[-1]):
                frames += await until_final(again)
        await until_final(sender)
    answer = await saved_answer(chat)
    assert answer.status == "complete"
    # First a snapshot of the text so far, asked of A through Redis...
    snapshot = DELTA.search(frames[0])
    assert snapshot and snapshot.group(1) == "t" and snapshot.group(3) == "innerHTML"
    shown = html.unescape(snapshot.group(4))
    assert len(shown) >= 40 and answer.content.startswith(shown)
    # ...then only what follows it: nothing twice, nothing lost.
    appended = [
        html.unescape(body)
        for frame in frames[1:]
        for kind, _, mode, body in DELTA.findall(frame)
        if kind == "t" and mode == "beforeend"
    ]
    assert appended, "no delta after the snapshot: the answer ended before the reconnect"
    assert shown + "".join(appended) == answer.content
    assert streamed_text(frames) == answer.content
