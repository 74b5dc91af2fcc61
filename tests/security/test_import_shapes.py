"""Crafted import files of the wrong shape (usage, metrics, logprobs, choices, votes):
refused with the field named, never a 500 on the pages that read them later."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat.models import Conversation, Message
from tests.security.test_import_hostile import _document, _import, _text

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"usage": {"prompt_tokens": "many"}}, "messages[1].usage.prompt_tokens"),
        ({"usage": {"completion_tokens": [1]}}, "messages[1].usage.completion_tokens"),
        ({"usage": {"total_tokens": -1}}, "messages[1].usage.total_tokens"),
        ({"metrics": {"ttft_ms": "fast"}}, "messages[1].metrics.ttft_ms"),
        ({"metrics": {"cost": "free"}}, "messages[1].metrics.cost"),
        ({"logprobs": ["x"]}, "messages[1].logprobs[0]"),
        (
            {"choices": [{"index": 0, "content": "a"}, {"index": 0, "content": "b"}]},
            "messages[1].choices[1].index",
        ),
        ({"choices": [{"index": 0, "content": "a"}], "chosen": 3}, "messages[1].chosen"),
    ],
)
def test_usage_metrics_and_choices_of_the_wrong_shape_are_refused(
    owner_client, owner, fields, where
):
    response = _import(owner_client, _document(owner, **fields))
    assert response.status_code == 400
    assert f"conversations[0].{where}" in _text(response)


@pytest.mark.parametrize(
    ("lanes", "where"),
    [
        ([{"position": 0}, {"position": 1}], "votes[0].lanes[0]"),
        ([{"position": 0, "profile": "p"}], "votes[0].lanes[0]"),
        ([{"position": 0, "profile": 1, "model": "m"}], "votes[0].lanes[0].profile"),
        (["A"], "votes[0].lanes[0]"),
    ],
)
def test_a_vote_whose_lanes_lack_profile_or_model_is_refused(owner_client, owner, lanes, where):
    document = _document(owner)
    document["conversations"][0]["votes"] = [{"turn": 1, "verdict": "tie", "lanes": lanes}]
    response = _import(owner_client, document)
    assert response.status_code == 400
    assert f"conversations[0].{where}" in _text(response)
    assert owner_client.get(reverse("chat:leaderboard")).status_code == 200


def test_a_well_formed_file_with_choices_usage_and_votes_opens_and_continues(owner_client, owner):
    document = _document(
        owner,
        choices=[
            {"index": 0, "content": "one", "finish_reason": "stop", "logprobs": None},
            {"index": 1, "content": "two", "finish_reason": "length"},
        ],
        chosen=0,
        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "extra": {"a": 1}},
        metrics={"ttft_ms": 12, "total_ms": 40, "tokens_per_s": 50.5, "cost": None},
    )
    document["conversations"][0]["votes"] = [
        {
            "turn": 1,
            "verdict": "winner",
            "winner_position": 0,
            "lanes": [{"position": 0, "label": "A", "profile": "Demo", "model": "demo"}],
        }
    ]
    assert _import(owner_client, document).status_code == 302
    conversation = Conversation.objects.get(owner=owner)
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk]))
    assert page.status_code == 200
    answer = conversation.messages.get(role="assistant")
    chose = owner_client.post(reverse("chat:message_choose", args=[conversation.pk, answer.pk, 1]))
    assert chose.status_code == 200
    assert Message.objects.get(pk=answer.pk).content == "two"
    board = owner_client.get(reverse("chat:leaderboard"))
    assert board.status_code == 200 and b"Demo \xc2\xb7 demo" in board.content
