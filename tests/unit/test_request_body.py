from __future__ import annotations

import re

import pytest

from chat import conversations, request_body, turns
from chat.errors import ActionError
from chat.models import EndpointProfile, Message
from chat.params import check_params


@pytest.fixture
def lane(owner):
    profile = EndpointProfile.objects.create(owner=owner, name="P", base_url="https://x.test/v1")
    conversation = conversations.conversation_create(
        owner=owner, profile=profile, model="gpt-x", system_prompt="Be brief."
    )
    return conversation.lanes.get()


pytestmark = pytest.mark.django_db


def test_it_sends_only_what_the_user_set(lane):
    _, (answer,) = turns.turn_save(conversation=lane.conversation, content="Hi")
    body = request_body.request_body_build(lane=lane, assistant=answer)
    assert body == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_set_params_and_endpoint_quirks_shape_the_body(lane):
    lane.params = {"temperature": 0.2, "max_tokens": 50, "stop": ["END"]}
    lane.save()
    lane.profile.quirks = {
        "max_tokens_field": "max_completion_tokens",
        "include_usage": False,
        "system_role": "developer",
        "drop_params": ["temperature"],
    }
    lane.profile.save()
    _, (answer,) = turns.turn_save(conversation=lane.conversation, content="Hi")
    body = request_body.request_body_build(lane=lane, assistant=answer)
    assert body["messages"][0] == {"role": "developer", "content": "Be brief."}
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body and "temperature" not in body
    assert body["stop"] == ["END"]
    assert "stream_options" not in body


def test_history_is_the_shared_turns_plus_this_lanes_answers(lane):
    _, (first,) = turns.turn_save(conversation=lane.conversation, content="One")
    Message.objects.filter(pk=first.pk).update(content="Answer one", status=Message.Status.COMPLETE)
    _, (second,) = turns.turn_save(conversation=lane.conversation, content="Two")
    body = request_body.request_body_build(lane=lane, assistant=second)
    assert [m["content"] for m in body["messages"]] == ["Be brief.", "One", "Answer one", "Two"]


def test_an_error_answer_without_text_is_left_out_of_the_context(lane):
    _, (first,) = turns.turn_save(conversation=lane.conversation, content="One")
    Message.objects.filter(pk=first.pk).update(status=Message.Status.ERROR)
    _, (second,) = turns.turn_save(conversation=lane.conversation, content="Two")
    body = request_body.request_body_build(lane=lane, assistant=second)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "user"]


def test_a_send_while_streaming_is_refused_and_saves_nothing(lane):
    turns.turn_save(conversation=lane.conversation, content="One")
    with pytest.raises(ActionError, match="still streaming"):
        turns.turn_save(conversation=lane.conversation, content="Two")
    assert lane.conversation.messages.filter(role="user").count() == 1


def test_an_empty_or_oversized_message_is_refused(lane, settings):
    settings.MAX_MESSAGE_CHARS = 10
    with pytest.raises(ActionError, match="Type a message"):
        turns.turn_save(conversation=lane.conversation, content="  \n ")
    with pytest.raises(ActionError, match="limit is 10"):
        turns.turn_save(conversation=lane.conversation, content="x" * 11)
    assert not lane.conversation.messages.exists()


def test_the_first_message_titles_the_conversation(lane):
    turns.turn_save(conversation=lane.conversation, content="Explain   WAL mode\nin SQLite")
    lane.conversation.refresh_from_db()
    assert lane.conversation.title == "Explain WAL mode in SQLite"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"temperature": 3}, "at most 2"),
        ({"temperature": "hot"}, "must be a number"),
        ({"top_p": -0.1}, "at least 0"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"bogus": 1}, "unknown parameter"),
        ({"max_tokens": True}, "must be a number"),
    ],
)
def test_param_validation_names_the_problem(raw, error):
    cleaned, errors = check_params(raw)
    assert cleaned == {}
    (problem,) = errors.values()
    assert re.search(error, str(problem))


def test_param_cleaning_drops_unset_values():
    assert check_params({"temperature": "0.5", "seed": "", "stop": "###"}) == (
        {"temperature": 0.5, "stop": ["###"]},
        {},
    )


def test_a_blank_model_is_left_out_only_where_the_endpoint_has_a_default(lane):
    lane.model = ""
    lane.save()
    with pytest.raises(ActionError, match="pick a model"):
        turns.turn_save(conversation=lane.conversation, content="Hi")
    lane.profile.quirks = {"model_optional": True}
    lane.profile.save()
    lane.refresh_from_db()
    _, (answer,) = turns.turn_save(conversation=lane.conversation, content="Hi")
    body = request_body.request_body_build(lane=lane, assistant=answer)
    assert "model" not in body
    assert body["messages"][-1] == {"role": "user", "content": "Hi"}
    lane.conversation.mode = "completion"
    assert "model" not in request_body.completion_body_build(lane=lane, prompt="Once")


def test_the_new_conversation_form_refuses_a_blank_model_an_endpoint_needs(owner, lane):
    from chat.forms import NewConversationForm

    data = {"profile": lane.profile.pk, "model": " ", "content": "Hi"}
    form = NewConversationForm(data, owner=owner)
    assert not form.is_valid()
    assert "needs a model id" in form.errors["model"][0]
    lane.profile.quirks = {"model_optional": True}
    lane.profile.save()
    form = NewConversationForm(data, owner=owner)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["model"] == ""
