"""A page that connects while another process owns a streaming answer asks that process for
a snapshot. An unanswered request used to fall back after SNAPSHOT_TIMEOUT to the saved
text and drop the deltas held meanwhile, even while the owner was alive (busy, or its run
saved but not launched yet, so the request found no mailbox): a loaded machine made that
happen in the two-worker test. Now it asks again while the heartbeat is fresh, and falls
back only once the owner is gone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat import runs
from chat.models import Message
from chat.sockets import consumers
from tests.integration.test_consumer import connect, make_conversation

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def remote_streaming_answer(conversation) -> Message:
    """A streaming answer no run of this process owns, its heartbeat fresh."""
    lane = conversation.lanes.get()
    Message.objects.create(conversation=conversation, turn=1, role="user", content="Hi")
    return Message.objects.create(
        conversation=conversation, lane=lane, turn=1, role="assistant",
        status=Message.Status.STREAMING, content="Saved so far", heartbeat_at=timezone.now(),
    )  # fmt: skip


@database_sync_to_async
def owner_gone(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))


async def test_an_unanswered_snapshot_is_asked_again_while_its_owner_lives(owner, monkeypatch):
    monkeypatch.setattr(consumers, "SNAPSHOT_TIMEOUT", 0.01)
    asked: list[int] = []
    third = asyncio.Event()

    async def unanswered(message_id: int, reply_to: str) -> None:
        asked.append(message_id)
        if len(asked) >= 3:
            third.set()

    monkeypatch.setattr(runs, "snapshot_request", unanswered)
    conversation = await make_conversation(owner)
    answer = await remote_streaming_answer(conversation)
    comm = await connect(owner, conversation)
    try:
        await asyncio.wait_for(third.wait(), 60)  # asked, and asked again: not given up
        assert set(asked) == {answer.pk}
        assert await comm.receive_nothing(0.05)  # nothing rendered in place of the snapshot

        # Once its owner is gone (a stale heartbeat), the page gets the saved text.
        await owner_gone(answer)
        frame = await comm.receive_output(60)
        assert frame["type"] == "websocket.send"
        assert f'id="m-{answer.pk}"' in frame["text"] and "Saved so far" in frame["text"]
    finally:
        await comm.disconnect()
