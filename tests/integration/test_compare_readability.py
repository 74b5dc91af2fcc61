"""Comparison readability: parameter chips on lane heads, wins marked only when clear, no
"…" for a lane that did not answer, a leaderboard by model and settings, and blind mode
hiding what tells the models apart until the vote."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import compare, conversations
from chat.models import Conversation, EndpointProfile, Lane, Message
from chat.turns import turn_save
from tests.integration.test_compare import letter_of

pytestmark = pytest.mark.django_db(transaction=True)


def two_lanes(owner, *, blind: bool = False) -> Conversation:
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-fast")
    conversation.blind = blind
    conversation.save()
    return conversation


def finish(answers, metrics: list[dict]) -> None:
    for answer, m in zip(answers, metrics, strict=True):
        Message.objects.filter(pk=answer.pk).update(
            status="complete", content="An answer", finish_reason="stop", metrics=m,
            usage={"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45},
        )  # fmt: skip


def page_of(client, conversation) -> str:
    return client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()


def summary_of(page: str, turn: int) -> str:
    rest = page.split(f'id="summary-{turn}"')[1]
    return rest.split('<div class="summary"')[0].split('id="composer-bar"')[0]


def test_a_win_within_five_percent_is_not_marked(owner, owner_client):
    conversation = two_lanes(owner)
    _, answers = turn_save(conversation=conversation, content="Q1")
    finish(answers, [
        {"ttft_ms": 100, "total_ms": 1000, "tokens_per_s": 50.0},
        {"ttft_ms": 103, "total_ms": 1500, "tokens_per_s": 51.0},
    ])  # fmt: skip
    lanes = list(conversation.lanes.order_by("position"))
    result = compare.summary(lanes, list(conversation.messages.filter(lane__isnull=False)))
    # TTFT 100 vs 103 (3 %) and speed 50 vs 51 (2 %): noise. Total 1000 vs 1500: a win.
    assert result["best"] == {"total": 0}
    html = summary_of(page_of(owner_client, conversation), 1)
    assert html.count('class="best"') == 1


def test_a_lane_added_after_a_turn_shows_no_answer_there_not_an_ellipsis(owner, owner_client):
    conversation = two_lanes(owner, blind=True)
    _, answers = turn_save(conversation=conversation, content="Q1")
    finish(answers, [{"ttft_ms": 100}, {"ttft_ms": 300}])
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    Lane.objects.create(conversation=conversation, position=2, profile=profile, model="demo")
    html = summary_of(page_of(owner_client, conversation), 1)
    assert "…" not in html
    assert "has no answer to this turn" in html
    # The turn is complete: the vote is offered, for the lanes that answered.
    assert "A is better" in html and "B is better" in html and "C is better" not in html


def test_a_streaming_lane_still_shows_an_ellipsis(owner, owner_client):
    conversation = two_lanes(owner)
    _, answers = turn_save(conversation=conversation, content="Q1")
    finish(answers[:1], [{"ttft_ms": 100}])
    html = summary_of(page_of(owner_client, conversation), 1)
    assert "…" in html
    lanes = list(conversation.lanes.order_by("position"))
    assert not compare.summary(lanes, list(conversation.messages.all()))["complete"]


def test_lane_heads_show_their_parameters_and_mark_what_differs(owner, owner_client):
    conversation = two_lanes(owner)
    a, b = conversation.lanes.order_by("position")
    a.params = {"temperature": 0.2, "max_tokens": 256, "stop": ["\n\n", "END"]}
    b.params = {"max_tokens": 256, "seed": 7}
    a.save()
    b.save()
    chips_a = compare.lane_chips(a, [a, b])
    chips_b = compare.lane_chips(b, [a, b])
    assert [(c["label"], c["value"], c["differs"]) for c in chips_a] == [
        ("temp", "0.2", True), ("max", "256", False), ("stop", "×2", True),
        ("seed", "default", True),
    ]  # fmt: skip
    assert [(c["label"], c["value"], c["differs"]) for c in chips_b] == [
        ("temp", "default", True), ("max", "256", False), ("stop", "default", True),
        ("seed", "7", True),
    ]  # fmt: skip
    page = page_of(owner_client, conversation)
    head_a = page.split(f'id="lane-chips-{a.pk}"')[1].split("</div>")[0]
    assert '<span class="chip-param differs" title="Temperature: 0.2">temp 0.2</span>' in head_a
    assert '<span class="chip-param" title="Max tokens: 256">max 256</span>' in head_a

    # A panel save sends the chips of every lane the page shows again, out of band.
    assert page.count('name="chips_lane"') == 2
    save = {"panel_lane": b.pk, "param:temperature": "0.2", "param:max_tokens": "256",
            "param:seed": "7"}  # fmt: skip
    url = reverse("chat:params_save", args=[conversation.pk])
    html = owner_client.post(url, {**save, "chips_lane": [a.pk, b.pk]}).content.decode()
    assert f'id="lane-chips-{a.pk}" hx-swap-oob="outerHTML"' in html
    assert f'id="lane-chips-{b.pk}" hx-swap-oob="outerHTML"' in html
    # A page that does not show lane A (added since it loaded) gets no chips aimed at it.
    only_b = owner_client.post(url, {**save, "chips_lane": [b.pk]}).content.decode()
    assert f'id="lane-chips-{a.pk}"' not in only_b
    assert f'id="lane-chips-{b.pk}" hx-swap-oob="outerHTML"' in only_b
    chips_b = html.split(f'id="lane-chips-{b.pk}"')[1].split("</div>")[0]
    assert '<span class="chip-param" title="Temperature: 0.2">temp 0.2</span>' in chips_b


def test_the_leaderboard_ranks_one_model_under_two_settings_apart(owner, owner_client):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    Lane.objects.create(
        conversation=conversation, position=1, profile=profile, model="demo",
        params={"temperature": 1.5},
    )  # fmt: skip
    conversation.blind = True
    conversation.save()
    for turn in (1, 2):
        _, answers = turn_save(conversation=conversation, content=f"Q{turn}")
        finish(answers, [{}, {}])
        owner_client.post(
            reverse("chat:vote", args=[conversation.pk, turn]),
            {"verdict": "winner", "winner": letter_of(conversation, turn, 0)},
        )
    rows = compare.leaderboard(owner=owner)
    assert [(r["name"], r["settings"], r["wins"], r["losses"]) for r in rows] == [
        ("Demo (offline) · demo", "", 2, 0),
        ("Demo (offline) · demo", "temp 1.5", 0, 2),
    ]
    board = owner_client.get(reverse("chat:leaderboard")).content.decode()
    assert "temp 1.5" in board and "endpoint defaults" in board


def test_blind_mode_hides_speed_usage_and_lane_parameters_until_the_vote(owner, owner_client):
    conversation = two_lanes(owner, blind=True)
    a, b = conversation.lanes.order_by("position")
    a.params = {"temperature": 0.2}
    a.save()
    b.api = "responses"  # one model on its two APIs: which is which waits for the vote too
    b.save()
    _, answers = turn_save(conversation=conversation, content="Q1")
    finish(answers, [
        {"ttft_ms": 111, "total_ms": 1234, "tokens_per_s": 55.5},
        {"ttft_ms": 999, "total_ms": 4321, "tokens_per_s": 12.5},
    ])  # fmt: skip
    page = page_of(owner_client, conversation)
    turns = page.split('id="messages"')[1]
    assert answers[1].api == "responses"
    for tell in ("111 ms", "999 ms", "1,234", "4,321", "55.5", "12.5", "40 = 45", "TTFT",
                 "Responses"):  # fmt: skip
        assert tell not in turns, tell
    assert turns.count("shown after your vote") == 3  # two answers and the summary
    assert "temp 0.2" not in page  # no chips
    panel = owner_client.get(
        reverse("chat:params_panel", args=[conversation.pk]), {"panel_lane": a.pk}
    ).content.decode()
    assert 'id="params-blind"' in panel
    assert 'name="param:temperature"' not in panel and "0.2" not in panel

    owner_client.post(
        reverse("chat:vote", args=[conversation.pk, 1]),
        {"verdict": "winner", "winner": letter_of(conversation, 1, 1)},
    )
    turns = page_of(owner_client, conversation).split('id="messages"')[1]
    for shown in ("111 ms", "999 ms", "TTFT", "55.5", "<dt>API</dt><dd"):
        assert shown in turns, shown
