"""Stop that arrives between a run's start and its request: nothing is asked, and the
answer ends stopped (it used to be only flagged, and the request then ran to its end)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat import conversations, runs
from chat.models import EndpointProfile, Message
from chat.turns import turn_save
from chat.upstream import fake_app

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def _placeholder(owner) -> Message:
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(
        owner=owner, profile=profile, model="demo-fast"
    )
    _, (placeholder,) = turn_save(conversation=conversation, content="Hello")
    return Message.objects.select_related("lane__profile", "lane__conversation").get(
        pk=placeholder.pk
    )


async def test_a_stop_before_the_request_asks_nothing_and_ends_stopped(owner):
    placeholder = await _placeholder(owner)
    run = await database_sync_to_async(runs._run)(
        placeholder.lane, placeholder.request_body, placeholder.pk
    )
    before = fake_app().requests.total
    run.stop()  # as the Stop frame would, before ``main`` made the request
    await run.main()
    answer = await database_sync_to_async(Message.objects.get)(pk=placeholder.pk)
    assert answer.status == Message.Status.STOPPED
    assert fake_app().requests.total == before
