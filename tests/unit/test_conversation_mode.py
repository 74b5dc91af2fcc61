"""Switching a conversation between chat and completions: new turns use the new mode,
earlier ones keep theirs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import composer, conversations, request_body, turns
from chat.errors import ActionError
from chat.models import EndpointProfile, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner):
    profile = EndpointProfile.objects.create(owner=owner, name="P", base_url="https://x.test/v1")
    return conversations.conversation_create(owner=owner, profile=profile, model="m")


def test_earlier_messages_keep_their_mode_and_new_turns_use_the_new_one(conversation):
    first, (first_answer,) = turns.turn_save(conversation=conversation, content="Chat turn")
    Message.objects.filter(pk=first_answer.pk).update(status=Message.Status.COMPLETE)
    assert conversations.conversation_mode_set(conversation=conversation, mode="completion")
    second, (second_answer,) = turns.turn_save(conversation=conversation, content="Once")
    shown = {m.content or m.pk: m.shown_mode for m in conversation.messages.all()}
    assert shown[first_answer.pk] == "chat" and shown["Chat turn"] == "chat"
    assert shown["Once"] == "completion"
    lane = conversation.lanes.get()
    body = request_body.request_body_build(lane=lane, assistant=second_answer)
    assert body["prompt"] == "Once" and "messages" not in body
    # And back: the completion turn stays one; the chat history includes both turns.
    Message.objects.filter(pk=second_answer.pk).update(
        content=" upon a time", status=Message.Status.COMPLETE
    )
    assert conversations.conversation_mode_set(conversation=conversation, mode="chat")
    assert Message.objects.get(pk=second.pk).shown_mode == "completion"
    assert not conversations.conversation_mode_set(conversation=conversation, mode="chat")
    with pytest.raises(ActionError):
        conversations.conversation_mode_set(conversation=conversation, mode="images")


def test_a_lane_keeps_the_other_modes_values_when_the_panel_saves(conversation):
    lane = conversation.lanes.get()
    composer.lane_params_save(lane=lane, params={"completion_max_tokens": 40, "echo": True})
    composer.lane_params_save(lane=lane, params={"temperature": 0.3, "logprobs": True}, mode="chat")
    assert lane.params == {
        "completion_max_tokens": 40, "echo": True, "temperature": 0.3, "logprobs": True
    }  # fmt: skip
    # Back in completions: its own values are what the panel sent (max tokens cleared),
    # the chat-only ones stay for later.
    composer.lane_params_save(
        lane=lane, params={"echo": False, "temperature": 0.3}, mode="completion"
    )
    assert lane.params == {"logprobs": True, "echo": False, "temperature": 0.3}


def test_the_mode_switch_is_the_owners_only(client, owner, outsider, conversation):
    url = reverse("chat:conversation_mode", args=[conversation.pk])
    client.force_login(outsider)
    assert client.post(url, {"mode": "completion"}).status_code == 404
    client.force_login(owner)
    response = client.post(url, {"mode": "completion"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/c/{conversation.pk}/")
    conversation.refresh_from_db()
    assert conversation.mode == "completion"
