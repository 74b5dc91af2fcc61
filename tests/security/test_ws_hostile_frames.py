"""Hostile socket frames: every one gets a clear message, nothing is saved, and the socket
stays open (before: 1e400 raised OverflowError and closed it with 1011, after saving the
question for `repeat`; 50,000 "[" raised RecursionError)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from tests.integration.test_consumer import connect, make_conversation, until_done

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = "1" + "0" * 30  # a whole number no database column holds


async def _still_open(comm) -> None:
    await comm.send_to(text_data=json.dumps({"action": "ping-after"}))
    frame = await comm.receive_from(timeout=60)
    assert "Unknown action" in frame


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('{"action": "send", "content": "q", "repeat": 1e400}', "Repeat"),
        ('{"action": "send", "content": "q", "repeat": -1e400}', "Repeat"),
        ('{"action": "send", "content": "q", "repeat": true}', "Repeat"),
        ('{"action": "send", "content": "q", "repeat": 11}', "Repeat"),
        ('{"action": "send", "content": "q", "repeat": "2.5"}', "Repeat"),
        (f'{{"action": "send", "content": "q", "repeat": {HUGE}}}', "Repeat"),
        ('{"action": "stop", "message": 1e400}', "Stop needs a message id"),
        (f'{{"action": "stop", "message": {HUGE}}}', "Stop needs a message id"),
        ('{"action": "stop", "message": true}', "Stop needs a message id"),
        ('{"action": "tool_results", "message": 1e400}', "Tool results need"),
        (f'{{"action": "tool_results", "message": "{HUGE}"}}', "Tool results need"),
        ('{"action": "regenerate", "lane": 1e400}', "Regenerate needs a lane"),
        ('{"action": "regenerate", "lane": 0, "turn": 1e400}', "Regenerate needs a turn"),
        (f'{{"action": "regenerate", "lane": 0, "turn": {HUGE}}}', "Regenerate needs a turn"),
        ('{"action": "regenerate", "lane": NaN}', "Regenerate needs a lane"),
        ('{"action": "edit", "message": 1e400, "content": "x"}', "not part of this conversation"),
        ('{"action": "sync", "messages": [1e400]}', "malformed"),
        (f'{{"action": "sync", "messages": [{HUGE}]}}', "malformed"),
        ('{"action": "sync", "messages": 1e400}', "malformed"),
        ("[" * 50_000, "malformed"),
        ('{"a":' * 50_000, "malformed"),
    ],
)
async def test_a_hostile_frame_gets_a_clear_message_and_the_socket_stays_open(owner, raw, text):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=raw)
    frames: list[str] = []
    async with asyncio.timeout(60):  # a safety net: waits for the message, not a quiet spell
        while text not in "".join(frames):
            frames.append(await comm.receive_from(timeout=60))
    assert text in "".join(frames)
    await _still_open(comm)
    await comm.disconnect()
    # Refused before anything was saved: no question left without its answer.
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_a_repeat_sent_as_the_form_sends_it_still_works(owner):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    frame = {"action": "send", "content": 'q\n@fake {"tokens": 3, "tps": 500}', "repeat": "2"}
    await comm.send_to(text_data=json.dumps(frame))
    await until_done(comm)
    await until_done(comm)
    await comm.disconnect()
    answers = await database_sync_to_async(
        lambda: conversation.messages.filter(role="assistant").count()
    )()
    assert answers == 2


async def test_an_unexpected_error_in_a_frame_is_reported_and_the_socket_stays_open(
    owner, monkeypatch, caplog
):
    from chat.sockets.consumers import ConversationConsumer

    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)

    async def broken(self):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ConversationConsumer, "_streaming_ids", broken)
    await comm.send_to(text_data=json.dumps({"action": "stop"}))
    frame = await comm.receive_from(timeout=60)
    assert 'class="toast"' in frame and "failed on the server" in frame
    assert "the database went away" in caplog.text  # logged for the operator, not shown
    await _still_open(comm)
    await comm.disconnect()
