"""One meaning of "an answer is still streaming": marked streaming and its run alive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import branching, compare, conversations
from chat.errors import ActionError
from chat.models import EndpointProfile, Lane, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_lanes(owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    first = conversation.lanes.get()
    second = Lane.objects.create(conversation=conversation, position=1, profile=profile)
    Message.objects.create(conversation=conversation, turn=1, role="user", content="Hi")
    return conversation, first, second


def answer(lane: Lane, *, beat_ago: float | None, created_ago: float = 0) -> Message:
    now = timezone.now()
    message = Message.objects.create(
        conversation=lane.conversation, lane=lane, turn=1, role="assistant", status="streaming"
    )
    beat = None if beat_ago is None else now - timedelta(seconds=beat_ago)
    Message.objects.filter(pk=message.pk).update(
        heartbeat_at=beat, created_at=now - timedelta(seconds=created_ago)
    )
    return message


def test_live_is_a_recent_heartbeat_or_a_recent_start(two_lanes, settings):
    settings.RUN_STALE_AFTER = 15
    _, lane, _ = two_lanes
    fresh = answer(lane, beat_ago=2, created_ago=60)
    starting = answer(lane, beat_ago=None, created_ago=3)
    stale = answer(lane, beat_ago=40, created_ago=60)
    never_beat = answer(lane, beat_ago=None, created_ago=40)
    live = set(Message.objects.live_streaming().values_list("pk", flat=True))
    dead = set(Message.objects.stale_streaming().values_list("pk", flat=True))
    assert live == {fresh.pk, starting.pk}
    assert dead == {stale.pk, never_beat.pk}
    # The same answer as each message's own is_stale(), which the page shows.
    for message in Message.objects.streaming():
        assert (message.pk in live) is not message.is_stale()


def test_a_lane_whose_only_streaming_answer_is_stale_can_be_removed(two_lanes):
    conversation, _, second = two_lanes
    live = answer(second, beat_ago=1)
    with pytest.raises(ActionError, match="Stop the lane's answer"):
        compare.lane_remove(lane=second)
    Message.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    compare.lane_remove(lane=second)  # its run died with its process: nothing to stop
    assert conversation.lanes.count() == 1


def test_branching_refuses_while_live_and_not_after_the_run_died(two_lanes):
    conversation, lane, _ = two_lanes
    live = answer(lane, beat_ago=1)
    with pytest.raises(ActionError):
        branching._refuse_if_busy(conversation)
    Message.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    branching._refuse_if_busy(conversation)
    assert Message.objects.get(pk=live.pk).status == "interrupted"  # saved as it is shown
