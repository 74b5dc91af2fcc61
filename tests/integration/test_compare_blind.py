"""Blind comparison: until the user votes on a turn, nothing they get (page, partial,
socket frame, inspector, code export, diff, sweep) names a lane's endpoint or model."""

from __future__ import annotations

import asyncio
import html
import json
import re

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import compare
from chat.models import Conversation, EndpointProfile, Lane, Message
from tests.integration.test_consumer import connect

pytestmark = pytest.mark.django_db(transaction=True)

FAKE = "http://fake.invalid/v1"
# Each lane on its own endpoint (all served by the in-process fake); the third fails
# with a 404 whose message names its model, as real servers do.
LANES = [
    ("Northwind Gateway", "demo-fast"),
    ("Southbay Relay", "demo-slow"),
    ("Eastgate Proxy", "no-such-model"),
]
NAMES = [name for lane in LANES for name in lane]


def leaks(text: str) -> list[str]:
    return [name for name in NAMES if name.lower() in text.lower()]


@database_sync_to_async
def blind_comparison(owner) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="Blind test", blind=True)
    for position, (name, model) in enumerate(LANES):
        profile = EndpointProfile.objects.create(
            owner=owner,
            name=name,
            base_url=FAKE,
            default_model=model,
            models_cache=["demo", "demo-fast", "demo-slow"],
        )
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model=model
        )
    return conversation


async def turn_frames(owner, conversation, content: str, answers: int) -> list[str]:
    """Every frame the socket sends from connecting until `answers` final renders."""
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps({"action": "send", "content": content}))
    frames, done = [], 0
    async with asyncio.timeout(20):
        while done < answers:
            frame = await comm.receive_from(timeout=20)
            frames.append(frame)
            opening = frame.split(">", 1)[0]
            if opening.startswith("<article") and 'data-role="assistant"' in opening:
                done += 1
    await comm.disconnect()
    return frames


def every_view(client, conversation, turn: int) -> dict[str, str]:
    """What the user can open about a turn: the page, each answer's inspector and code,
    the diff, the panel and sweep of each lane, the composer's code, a lane head save."""
    answers = Message.objects.filter(conversation=conversation, turn=turn, role="assistant")
    lanes = list(conversation.lanes.order_by("position"))
    pk = conversation.pk
    got = {"page": client.get(reverse("chat:conversation", args=[pk]))}
    for answer in answers:
        got[f"inspect {answer.pk}"] = client.get(
            reverse("chat:message_inspect", args=[pk, answer.pk])
        )
        got[f"code {answer.pk}"] = client.get(reverse("chat:message_code", args=[pk, answer.pk]))
    got["diff"] = client.get(reverse("chat:diff", args=[pk, turn]), {"a": 0, "b": 1})
    got["draft code"] = client.post(reverse("chat:draft_code", args=[pk]), {"content": "x"})
    for lane in lanes:
        got[f"panel {lane.pk}"] = client.get(
            reverse("chat:params_panel", args=[pk]), {"panel_lane": lane.pk}
        )
        got[f"sweep {lane.pk}"] = client.get(reverse("chat:lane_sweep", args=[pk, lane.pk]))
    got["tools"] = client.get(reverse("chat:tools_panel", args=[pk]), {"tools_lane": lanes[1].pk})
    got["lane head"] = client.post(
        reverse("chat:lane_settings", args=[pk, lanes[0].pk]),
        {"own_system_prompt": "Be brief.", "use_own_prompt": "1"},
    )
    for name, response in got.items():
        assert response.status_code == 200, name
    return {name: response.content.decode() for name, response in got.items()}


async def test_blind_mode_names_no_lane_before_the_vote_and_all_after(owner, client):
    conversation = await blind_comparison(owner)
    frames = await turn_frames(owner, conversation, 'Which is best?\n@fake {"tokens": 6}', 3)
    assert not leaks("".join(frames)), [f for f in frames if leaks(f)][:2]
    answers = await database_sync_to_async(list)(
        Message.objects.filter(conversation=conversation, role="assistant").order_by("id")
    )
    assert [a.status for a in answers] == ["complete", "complete", "error"]
    assert "no-such-model" in answers[2].error["message"]  # the fake did name it

    await database_sync_to_async(client.force_login)(owner)
    views = await database_sync_to_async(every_view)(client, conversation, 1)
    for name, body in views.items():
        assert not leaks(body), (name, leaks(body))
    page = views["page"]
    # Answers go by the letter of their place in the turn (shuffled), lanes by number.
    await database_sync_to_async(conversation.refresh_from_db)()
    lanes = await database_sync_to_async(list)(conversation.lanes.all())
    assert set(conversation.blind_orders["1"]) == {lane.pk for lane in lanes}  # stored
    letters = await database_sync_to_async(compare.turn_letters)(conversation, 1, lanes)
    assert sorted(letters.values()) == ["A", "B", "C"]
    assert "Answer A" in page and "Answer C" in page and "Lane A" not in page
    assert 'class="lane-badge">1<' in page and 'class="lane-badge">3<' in page
    assert "Endpoint and model hidden until you vote" in page
    failed = letters[answers[2].lane_id]
    assert f"[answer {failed}]" in page  # the error says what failed, without the name
    inspect_a = views[f"inspect {answers[0].pk}"]
    assert "Hidden until you vote" in inspect_a and "turn 1" in inspect_a
    assert "Hidden until you vote" in views[f"code {answers[0].pk}"]
    assert "Turn Blind off" in views["draft code"]
    # positions 0 and 1, asked for: named by the letters the turn shows them under
    by_position = {lane.position: letters[lane.pk] for lane in lanes}
    assert f"Turn 1: {by_position[0]} vs {by_position[1]}" in views["diff"]
    # blind, the lane head saved its own prompt and took no endpoint or model
    lane_a = await database_sync_to_async(conversation.lanes.get)(position=0)
    assert lane_a.system_prompt == "Be brief." and lane_a.model == "demo-fast"

    vote = reverse("chat:vote", args=[conversation.pk, 1])
    response = await database_sync_to_async(client.post)(vote, {"verdict": "all_bad"})
    assert response.status_code == 302

    views = await database_sync_to_async(every_view)(client, conversation, 1)
    turn_1 = views["page"].split('id="turn-1"')[1]
    assert {"demo-fast", "demo-slow", "no-such-model"} <= set(leaks(turn_1))
    assert "Voted: all bad" in turn_1
    inspect_a = html.unescape(views[f"inspect {answers[0].pk}"])
    assert "Northwind Gateway" in inspect_a
    assert '"model": "demo-fast"' in inspect_a
    assert "demo-slow" in views[f"code {answers[1].pk}"]
    assert "The model `no-such-model` does not exist" in views["page"]
    # the lanes themselves stay hidden while Blind is on: the next turn is blind again
    assert "Endpoint and model hidden until you vote" in views["page"]

    frames = await turn_frames(owner, conversation, 'And now?\n@fake {"tokens": 6}', 3)
    assert not leaks("".join(frames))
    page = await database_sync_to_async(client.get)(
        reverse("chat:conversation", args=[conversation.pk])
    )
    turn_2 = page.content.decode().split('id="turn-2"')[1]
    assert not leaks(turn_2) and "Answer B" in turn_2


def test_turning_blind_off_shows_the_lanes_again(owner, owner_client):
    profile = EndpointProfile.objects.create(
        owner=owner, name="Northwind Gateway", base_url=FAKE, default_model="demo-fast"
    )
    conversation = Conversation.objects.create(owner=owner, title="B", blind=True)
    for position, model in enumerate(["demo-fast", "demo-slow"]):
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model=model
        )
    url = reverse("chat:conversation", args=[conversation.pk])
    page = owner_client.get(url).content.decode()
    assert not leaks(page)
    assert "Every lane's endpoint and model show again" in page  # asked before turning off
    owner_client.post(reverse("chat:blind_toggle", args=[conversation.pk]), {"blind": "off"})
    page = owner_client.get(url).content.decode()
    assert {"Northwind Gateway", "demo-fast", "demo-slow"} <= set(leaks(page))


def _blind_pair(owner, lanes: int = 2) -> Conversation:
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = Conversation.objects.create(
        owner=owner, title="Shuffled", blind=True, id="00000000-0000-4000-8000-000000000001"
    )
    for position in range(lanes):
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model="demo"
        )
    return conversation


def test_a_blind_turn_shows_its_answers_shuffled_stored_and_the_same_on_reload(owner, owner_client):
    from chat.turns import turn_save

    conversation = _blind_pair(owner, lanes=3)
    url = reverse("chat:conversation", args=[conversation.pk])
    turns = range(1, 13)
    for turn in turns:
        _, answers = turn_save(conversation=conversation, content=f"Q{turn} @ {turn}")
        Message.objects.filter(pk__in=[a.pk for a in answers]).update(status="complete")
    conversation.refresh_from_db()
    lanes = list(conversation.lanes.order_by("position"))
    orders = [conversation.blind_orders[str(turn)] for turn in turns]
    # Stored at the turn's start, each a permutation of the lanes; and they differ from
    # turn to turn, so lane 1 is not always A. Seeded by the question's id too, which
    # the database picks: statistical, false failure at most 6·(1/6)^12 + (1/3)^12 ≈ 2e-6.
    assert all(sorted(order) == [lane.pk for lane in lanes] for order in orders)
    assert len({tuple(order) for order in orders}) > 1
    assert {order[0] for order in orders} != {lanes[0].pk}

    def shown(page: str, turn: int) -> list[int]:
        row = page.split(f'id="turn-{turn}"')[1].split('class="summary')[0]
        return [int(pk) for pk in re.findall(rf'id="cell-{turn}-(\d+)"', row)]

    first = owner_client.get(url).content.decode()
    for turn in turns:
        assert shown(first, turn) == orders[turn - 1]
    # A lane added later comes last in the earlier turns; the order is the same on reload.
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    late = Lane.objects.create(conversation=conversation, position=3, profile=profile)
    again = owner_client.get(url).content.decode()
    assert shown(again, 1) == [*orders[0], late.pk]

    # The lane added later did not answer turn 1: its letter (D) is no vote, and it is
    # not in the vote's lanes.
    late_vote = owner_client.post(
        reverse("chat:vote", args=[conversation.pk, 1]), {"verdict": "winner", "winner": "D"}
    )
    assert late_vote.status_code == 302 and not conversation.votes.filter(turn=1).exists()
    # A vote names the letter shown: the lane behind it wins, whatever its position.
    winner_pk = orders[0][1]  # shown second: "B"
    owner_client.post(
        reverse("chat:vote", args=[conversation.pk, 1]), {"verdict": "winner", "winner": "B"}
    )
    vote = conversation.votes.get(turn=1)
    assert vote.winner_position == next(lane.position for lane in lanes if lane.pk == winner_pk)
    assert sorted(lane["label"] for lane in vote.lanes) == ["A", "B", "C"]
    page = owner_client.get(url).content.decode()
    assert "Voted: B better" in page.split('id="summary-1"')[1]
    bad = owner_client.post(
        reverse("chat:vote", args=[conversation.pk, 2]), {"verdict": "winner", "winner": "0"}
    )
    assert bad.status_code == 302 and not conversation.votes.filter(turn=2).exists()


def test_not_blind_a_turn_shows_its_lanes_in_order(owner, owner_client):
    from chat.turns import turn_save

    conversation = _blind_pair(owner, lanes=3)
    conversation.blind = False
    conversation.save()
    turn_save(conversation=conversation, content="Q")
    conversation.refresh_from_db()
    assert conversation.blind_orders == {}
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    row = page.split('id="turn-1"')[1]
    cells = [int(pk) for pk in re.findall(r'id="cell-1-(\d+)"', row)]
    assert cells == list(conversation.lanes.order_by("position").values_list("pk", flat=True))
