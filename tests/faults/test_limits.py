"""Faults on our side: a flood of sends, an answer past the size cap, a locked SQLite
database, and the worker process killed mid-answer."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
import time
from functools import partial

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.urls import reverse

from chat import actions, conversations, runs, turns
from chat.errors import ActionError
from chat.models import EndpointProfile, Lane, Message
from tests.bench.wire import fake_prompt, is_final, send_frame, session_key_for, ws_connect
from tests.conftest import server_env, start_app_server
from tests.integration.test_consumer import connect

pytestmark = pytest.mark.django_db(transaction=True)


def conversation_for(user, lanes: int = 1):
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    for position in range(1, lanes):
        Lane.objects.create(conversation=conversation, position=position, profile=profile,
                            model="demo")  # fmt: skip
    return conversation


def test_too_many_answers_at_once_is_refused_before_saving(owner, settings):
    settings.RUNS_PER_USER_MAX = 4
    first = conversation_for(owner, lanes=3)
    turns.turn_save(conversation=first, content="three lanes")  # 3 streaming
    second = conversation_for(owner, lanes=2)
    with pytest.raises(ActionError, match="3 answers streaming .* limit is 4"):
        turns.turn_save(conversation=second, content="two more")
    assert not second.messages.exists()  # nothing half-saved
    # another user is not affected by this one's runs
    other = conversation_for(type(owner).objects.create_user("other", password="x" * 12))
    turns.turn_save(conversation=other, content="fine")
    # stale runs (their process died) do not count
    old = "2000-01-01T00:00:00Z"
    Message.objects.filter(conversation=first).update(heartbeat_at=old, created_at=old)
    turns.turn_save(conversation=second, content="two more")


def test_the_answer_rate_per_minute_is_limited_with_a_retry_hint(owner, settings):
    settings.ANSWERS_PER_MINUTE = 3
    conversation = conversation_for(owner)
    # Answers that no run started (imported, branched) are not requests: they don't count.
    for n in range(5):
        Message.objects.create(conversation=conversation, turn=0, role="assistant",
                               content=f"imported {n}", status="complete")  # fmt: skip
    for n in range(3):
        _, [answer] = turns.turn_save(conversation=conversation, content=f"turn {n}")
        Message.objects.filter(pk=answer.pk).update(status="complete")
    with pytest.raises(ActionError, match=r"limit is 3 a minute. Try again in \d+ s"):
        turns.turn_save(conversation=conversation, content="one too many")
    with pytest.raises(ActionError, match="limit is 3 a minute"):
        turns.answers_regenerate(conversation=conversation)
    assert conversation.messages.filter(role="user").count() == 3


async def test_a_refused_send_keeps_the_text_and_says_why(owner, settings):
    settings.ANSWERS_PER_MINUTE = 1
    conversation = await database_sync_to_async(conversation_for)(owner)
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=send_frame(fake_prompt("first", tps=0, tokens=3)))
    while not is_final(await comm.receive_from(timeout=10)):
        pass
    await comm.send_to(text_data=send_frame("second, typed with care"))
    frame = await comm.receive_from(timeout=10)
    await comm.disconnect()
    assert "limit is 1 a minute" in frame and "second, typed with care" in frame


async def test_an_answer_past_the_size_cap_is_cut_and_kept(owner, settings):
    settings.ANSWER_MAX_CHARS = 200
    conversation = await database_sync_to_async(conversation_for)(owner)
    text = fake_prompt("long", tps=0, tokens=400)
    [run] = await runs.start(partial(actions.send, conversation, text))
    await asyncio.wait_for(run.task, 10)
    answer = await database_sync_to_async(Message.objects.get)(pk=run.message_id)
    assert answer.status == "error" and answer.error["type"] == "answer_too_large"
    assert "ANSWER_MAX_CHARS" in answer.error["message"]
    assert 200 < len(answer.content) < 300  # kept up to the chunk that passed the cap


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own write lock")
def test_a_briefly_locked_sqlite_database_is_waited_for_not_lost(owner):
    conversation = conversation_for(owner)
    locked = threading.Event()

    released = threading.Event()

    def hold_the_write_lock() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"])
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(1.0)  # the other writer's transaction; how long is not what is tested
        released.set()
        other.commit()
        other.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert locked.wait(60), "the other writer never took the lock"
    turns.turn_save(conversation=conversation, content="written after the lock")
    # The turn could only be written once the other writer let go: it waited, then saved
    # (an order of events, not a duration).
    assert released.is_set()
    holder.join()
    assert conversation.messages.filter(content="written after the lock").exists()


async def test_a_worker_killed_mid_answer_leaves_it_interrupted_with_its_text(
    owner, settings, client
):
    settings.RUN_STALE_AFTER = 1.5
    conversation = await database_sync_to_async(conversation_for)(owner)
    session = await database_sync_to_async(session_key_for)(owner)
    proc, base = await asyncio.to_thread(
        start_app_server, {**server_env(), "RUN_STALE_AFTER": "1.5"}
    )
    try:
        ws = await ws_connect(base, conversation.pk, session)
        # Far more tokens than can stream before the kill, whatever the machine's speed.
        await ws.send(send_frame(fake_prompt("slow", tokens=100_000, tps=20)))
        answer = None
        deadline = time.monotonic() + 60  # a safety net only
        while time.monotonic() < deadline:  # until a heartbeat has saved some text
            await asyncio.sleep(0.3)
            answer = await database_sync_to_async(
                lambda: conversation.messages.filter(role="assistant").first()
            )()
            if answer is not None and len(answer.content) > 20:
                break
        assert answer is not None and answer.content, "no heartbeat saved text within 60 s"
        assert answer.status == "streaming"
        saved = answer.content
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        await ws.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    # Reload the page until the heartbeat is older than RUN_STALE_AFTER: a page showing the
    # answer then saves it as interrupted (a condition, polled; not a fixed sleep).
    await database_sync_to_async(client.force_login)(owner)
    url = reverse("chat:conversation", args=[conversation.pk])
    deadline = time.monotonic() + 60  # a safety net only
    while True:
        page = await database_sync_to_async(client.get)(url)
        answer = await database_sync_to_async(Message.objects.get)(pk=answer.pk)
        if answer.status != "streaming" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert answer.status == "interrupted"
    assert answer.content.startswith(saved)  # text up to the last heartbeat, kept
    assert 'data-status="interrupted"' in page.content.decode()
    assert json.dumps(answer.error)  # a reason is saved with it
