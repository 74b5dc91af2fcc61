"""Side-by-side comparison: independent lanes, metrics against the fake's timings,
sweeps, repeats, regenerate with versions, diff, blind votes, shareable setups."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import compare, conversations, request_body, turns
from chat.errors import ActionError
from chat.models import Conversation, EndpointProfile, Lane, Message
from chat.templatetags.chat_tags import num
from chat.upstream import fake_app, get_client
from tests.integration.test_consumer import connect, messages_of

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def comparison(user, models: list[str]) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model=models[0])
    for position, model in enumerate(models[1:], start=1):
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model=model
        )
    return conversation


DELTA = re.compile(r'<span id="t-(\d+)" hx-swap-oob="(?:beforeend|innerHTML)">')


def new_gate() -> str:
    """A gate name of the in-process fake, this test's own (gates outlive a test)."""
    return f"g-{uuid.uuid4().hex[:16]}"


async def open_gate(name: str) -> None:
    response = await get_client().post(f"http://fake.invalid/v1/fake/gates/{name}")
    assert response.json() == {"gate": name, "open": True}


class Watch:
    """The frames of one socket: which answers have streamed text (a delta frame) and
    which have finished (their final render), in order. ``until`` reads frames until a
    condition holds; its timeouts are safety nets only."""

    def __init__(self, comm) -> None:
        self.comm = comm
        self.streamed: set[int] = set()
        self.finished: list[int] = []

    async def until(self, done) -> None:
        async with asyncio.timeout(60):
            while not done():
                frame = await self.comm.receive_from(timeout=60)
                self.streamed.update(int(pk) for pk in DELTA.findall(frame))
                opening = frame.split(">", 1)[0]  # a run's final render is an article
                if opening.startswith("<article") and 'data-role="assistant"' in opening:
                    start = frame.index('id="m-') + 6
                    self.finished.append(int(frame[start : frame.index('"', start)]))


@database_sync_to_async
def held_profile(user, gate: str) -> EndpointProfile:
    """The demo endpoint with every answer held after its 2nd token until ``gate`` opens
    (the fake reads an X-Fake header as @fake directives): one lane's own pace, set by
    the test, whatever the message says to all lanes."""
    demo = EndpointProfile.objects.get(owner=user, is_demo=True)
    profile = EndpointProfile(
        owner=user, name=f"Held {gate}", base_url=demo.base_url,
        models_cache=demo.models_cache, default_model=demo.default_model,
    )  # fmt: skip
    profile.extra_headers = {"x-fake": json.dumps({"hold_after": 2, "gate": gate})}
    profile.save()
    return profile


@database_sync_to_async
def lane_profile(conversation, position: int, profile: EndpointProfile) -> None:
    Lane.objects.filter(conversation=conversation, position=position).update(profile=profile)


@database_sync_to_async
def statuses_of(conversation) -> dict[int, str]:
    return dict(conversation.messages.filter(role="assistant").values_list("pk", "status"))


async def run_turn(owner, conversation, frame, answers: int, timeout: float = 20):
    """Send, then collect frames until `answers` final renders arrived; returns the
    order in which lanes finished (message ids)."""
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps(frame))
    finished = []
    async with asyncio.timeout(timeout):
        while len(finished) < answers:
            frame_text = await comm.receive_from(timeout=timeout)
            opening = frame_text.split(">", 1)[0]  # a run's final render is an article
            if opening.startswith("<article") and 'data-role="assistant"' in opening:
                start = frame_text.index('id="m-') + 6
                finished.append(int(frame_text[start : frame_text.index('"', start)]))
    await comm.disconnect()
    return finished


async def test_lanes_stream_independently_and_metrics_match_the_fakes_timings(owner):
    # The order in which lanes finish is made by gates, not raced: "demo" is held after
    # its 2nd token until the test opens gate A, "demo-slow" until gate B.
    conversation = await comparison(owner, ["demo-fast", "demo", "demo-slow", "no-such-model"])
    gate_a, gate_b = new_gate(), new_gate()
    await lane_profile(conversation, 1, await held_profile(owner, gate_a))
    await lane_profile(conversation, 2, await held_profile(owner, gate_b))
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps({"action": "send", "content": 'Race\n@fake {"tokens": 24}'})
    )
    watch = Watch(comm)
    await watch.until(lambda: watch.finished or watch.streamed)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    fast, demo, slow, missing = (next(m.pk for m in answers if m.model == model) for model in
                                 ("demo-fast", "demo", "demo-slow", "no-such-model"))  # fmt: skip
    # The fast lane and the failing one end while the other two are held: independent.
    await watch.until(lambda: {fast, missing} <= set(watch.finished) and demo in watch.streamed)
    statuses = await statuses_of(conversation)
    assert statuses[demo] == statuses[slow] == "streaming"
    assert statuses[missing] == "error" and statuses[fast] == "complete"
    await open_gate(gate_a)
    await watch.until(lambda: demo in watch.finished and slow in watch.streamed)
    assert (await statuses_of(conversation))[slow] == "streaming"
    await open_gate(gate_b)
    await watch.until(lambda: slow in watch.finished)
    await comm.disconnect()
    assert set(watch.finished[:2]) == {fast, missing} and watch.finished[2:] == [demo, slow]

    by_model = {m.model: m for m in await messages_of(conversation) if m.role == "assistant"}
    assert by_model["no-such-model"].status == "error"
    assert by_model["no-such-model"].error["status"] == 404
    for model in ("demo-fast", "demo", "demo-slow"):
        assert by_model[model].status == "complete", model
        assert len(by_model[model].content.split()) > 5
    # Only bounds a loaded machine cannot break (the arithmetic itself, with fixed times:
    # tests/unit/test_run_metrics.py). "demo": 150 ms to the first token, then 60
    # tokens/s; the fake never sends sooner, so times can only be longer. Tokens/s has an
    # upper bound: the test saw "demo"'s 2nd token before opening its gate, and the 22
    # tokens after the hold are paced, so 24 tokens took at least 21/60 s from the first.
    demo_m, slow_m = by_model["demo"].metrics, by_model["demo-slow"].metrics
    assert demo_m["ttft_ms"] >= 150
    assert demo_m["total_ms"] >= 150 + 23 * 1000 / 60
    assert demo_m["completion_tokens"] == 24 and demo_m["tokens_estimated"] is False
    assert 0 < demo_m["tokens_per_s"] <= round(24 * 60 / 21, 1)
    # "demo-slow": 8 tokens/s (same reasoning).
    assert slow_m["total_ms"] >= 23 * 1000 / 8
    assert 0 < slow_m["tokens_per_s"] <= round(24 * 8 / 21, 1)


async def test_stop_one_lane_leaves_the_others_running(owner):
    conversation = await comparison(owner, ["demo", "demo", "demo"])
    gate = new_gate()  # every lane is held after 5 tokens until the test opens it
    comm = await connect(owner, conversation)
    prompt = f'Long\n@fake {{"tokens": 60, "tps": 40, "hold_after": 5, "gate": "{gate}"}}'
    await comm.send_to(text_data=json.dumps({"action": "send", "content": prompt}))
    watch = Watch(comm)
    await watch.until(lambda: watch.streamed)
    answers = [m.pk for m in await messages_of(conversation) if m.role == "assistant"]
    await watch.until(lambda: answers[1] in watch.streamed)  # lane 1 is streaming
    await comm.send_to(text_data=json.dumps({"action": "stop", "message": answers[1]}))
    await watch.until(lambda: answers[1] in watch.finished)
    statuses = await statuses_of(conversation)
    assert statuses[answers[1]] == "stopped"
    assert statuses[answers[0]] == statuses[answers[2]] == "streaming"  # held, not stopped
    await open_gate(gate)
    await watch.until(lambda: {answers[0], answers[2]} <= set(watch.finished))
    await comm.disconnect()
    statuses = await statuses_of(conversation)
    assert statuses[answers[1]] == "stopped"
    assert statuses[answers[0]] == statuses[answers[2]] == "complete"


def test_a_sweep_makes_lanes_that_differ_in_one_parameter(owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    lane.params = {"top_p": 0.9}
    lane.save()
    values = compare.sweep_values("temperature", "0, 0.5, 1, 1.5")
    compare.lanes_sweep(lane=lane, param="temperature", values=values)
    lanes = list(conversation.lanes.order_by("position"))
    assert [lane.params for lane in lanes] == [
        {"top_p": 0.9, "temperature": t} for t in (0.0, 0.5, 1.0, 1.5)
    ]
    assert {lane.model for lane in lanes} == {"demo"}
    with pytest.raises(ActionError, match="at most 6"):
        compare.lanes_sweep(lane=lanes[0], param="seed", values=[1, 2, 3, 4])
    compare.lanes_sweep(lane=lanes[3], models=["demo-fast", "demo-slow"])
    assert [lane.model for lane in conversation.lanes.order_by("position")][-2:] == [
        "demo-fast",
        "demo-slow",
    ]


async def test_repeat_runs_give_min_median_max_per_lane(owner):
    conversation = await comparison(owner, ["demo-fast", "demo"])
    frame = {"action": "send", "content": 'Again\n@fake {"tokens": 12}', "repeat": "3"}
    await run_turn(owner, conversation, frame, 6, timeout=30)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    for model in ("demo-fast", "demo"):
        mine = [m for m in answers if m.model == model]
        assert sorted(m.attempt for m in mine) == [0, 1, 2]
        assert [m.hidden for m in sorted(mine, key=lambda m: m.attempt)] == [True, True, False]
        assert all(m.status == "complete" for m in mine)

    @database_sync_to_async
    def the_summary():
        lanes = list(conversation.lanes.all())
        return compare.summary(lanes, list(Message.objects.filter(conversation=conversation)))

    columns = (await the_summary())["columns"]
    totals = [
        sorted(m.metrics["total_ms"] for m in answers if m.lane_id == column["lane"].pk)
        for column in columns
    ]
    for column, values in zip(columns, totals, strict=True):
        assert column["total"] == {
            "min": values[0], "median": values[1], "max": values[2], "n": 3
        }  # fmt: skip
    assert (await the_summary())["best"]["total"] == 0  # demo-fast


async def test_a_repeat_with_n_choices_streams_every_choice_into_its_own_column(owner):
    """A repeat's placeholder is shown with its request body saved: with n=2 its cell has
    a column for choice 2, so the repeat's t1 deltas have somewhere to go."""
    conversation = await comparison(owner, ["demo"])

    @database_sync_to_async
    def two_choices():
        Lane.objects.filter(conversation=conversation).update(params={"n": 2})

    await two_choices()
    comm = await connect(owner, conversation)
    frame = {"action": "send", "content": 'Twice\n@fake {"tokens": 4}', "repeat": "2"}
    await comm.send_to(text_data=json.dumps(frame))
    frames, finished = [], 0
    async with asyncio.timeout(20):
        while finished < 2:
            text = await comm.receive_from(timeout=20)
            frames.append(text)
            opening = text.split(">", 1)[0]
            finished += opening.startswith("<article") and 'data-role="assistant"' in opening
    await comm.disconnect()
    answers = sorted(
        (m for m in await messages_of(conversation) if m.role == "assistant"),
        key=lambda m: m.attempt,
    )
    assert [m.attempt for m in answers] == [0, 1]
    repeat = answers[1]
    shown = next(f for f in frames if f'id="m-{repeat.pk}"' in f)  # its first appearance
    assert f'id="t1-{repeat.pk}"' in shown


async def test_regenerate_keeps_the_old_answer_as_a_version(owner, client):
    conversation = await comparison(owner, ["demo-fast", "demo-fast"])
    await run_turn(owner, conversation, {"action": "send", "content": "One"}, 2)
    first = [m for m in await messages_of(conversation) if m.role == "assistant"]
    await run_turn(owner, conversation, {"action": "regenerate", "lane": "1"}, 1)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    assert len(answers) == 3
    regenerated = answers[-1]
    assert regenerated.lane_id == first[1].lane_id and regenerated.attempt == 1
    assert {m.pk: m.hidden for m in answers} == {
        first[0].pk: False, first[1].pk: True, regenerated.pk: False
    }  # fmt: skip
    # back to the first version: it is the lane's context again
    await database_sync_to_async(client.force_login)(owner)
    url = reverse("chat:attempt_show", args=[conversation.pk, first[1].lane_id, first[1].turn, 0])
    response = await database_sync_to_async(client.post)(url)
    assert response.status_code == 200 and "1/2" in response.content.decode()
    await run_turn(owner, conversation, {"action": "send", "content": "Two"}, 2)
    lane = await database_sync_to_async(Lane.objects.get)(pk=first[1].lane_id)
    history = await database_sync_to_async(request_body.lane_history)(lane=lane, before_turn=2)
    assert [m.pk for m in history if m.role == "assistant"] == [first[1].pk]


def letter_of(conversation: Conversation, turn: int, position: int) -> str:
    """The letter ``turn`` shows lane ``position``'s answer under."""
    lanes = list(conversation.lanes.all())
    lane = next(lane for lane in lanes if lane.position == position)
    return compare.turn_letters(conversation, turn, lanes)[lane.pk]


def test_blind_votes_land_in_the_leaderboard(owner, owner_client):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-slow")
    conversation.blind = True
    conversation.save()
    for turn in (1, 2, 3):
        user, answers = turns.turn_save(conversation=conversation, content=f"Q{turn}")
        Message.objects.filter(pk__in=[a.pk for a in answers]).update(status="complete")
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "demo-slow" not in page.split('id="messages"')[1]  # identities hidden in the turns
    assert "A is better" in page
    url = lambda t: reverse("chat:vote", args=[conversation.pk, t])  # noqa: E731
    # A vote names the letter the turn shows (shuffled when blind), not the lane.
    owner_client.post(url(1), {"verdict": "winner", "winner": letter_of(conversation, 1, 1)})
    owner_client.post(url(2), {"verdict": "winner", "winner": letter_of(conversation, 2, 1)})
    owner_client.post(url(3), {"verdict": "tie"})
    rows = {r["name"]: r for r in compare.leaderboard(owner=owner)}
    slow, fast = rows["Demo (offline) · demo-slow"], rows["Demo (offline) · demo"]
    assert (slow["wins"], slow["losses"], slow["ties"], slow["votes"]) == (2, 0, 1, 3)
    assert (fast["wins"], fast["losses"], fast["ties"], fast["votes"]) == (0, 2, 1, 3)
    # Two wins and a tie: rated above, symmetric around the reference; no interval yet.
    assert slow["rating"] > 1000 > fast["rating"]
    assert slow["rating"] - 1000 == pytest.approx(1000 - fast["rating"])
    assert slow["low"] is None
    board = owner_client.get(reverse("chat:leaderboard")).content.decode()
    assert board.index("demo-slow") < board.index("· demo<")
    assert "after 5 votes" in board and "score" not in board.lower()
    # after the vote, that turn's identities are shown
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert f"Voted: {letter_of(conversation, 1, 1)} better" in page.split('id="summary-1"')[1]


def test_word_diff_marks_changes_on_word_boundaries():
    ops = compare.word_diff("the quick brown fox", "the slow brown fox jumps")
    assert ops == [
        ("equal", "the "),
        ("delete", "quick"),
        ("insert", "slow"),
        ("equal", " brown fox"),
        ("insert", " jumps"),
    ]


def test_a_shared_setup_opens_a_new_comparison_without_history(owner_client, owner, outsider):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    lane.params = {"temperature": 0.2}
    lane.save()
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-slow")
    turns.turn_save(conversation=conversation, content="history that must not travel")
    page = owner_client.get(reverse("chat:setup_link", args=[conversation.pk])).content.decode()
    link = page.split("<pre>")[1].split("</pre>")[0].replace("&amp;", "&")
    path = link.split("testserver")[1]
    owner_client.force_login(outsider)
    assert "demo-slow" in owner_client.get(path).content.decode()
    response = owner_client.post(path)
    new = Conversation.objects.filter(owner=outsider).get()
    assert response.status_code == 302
    assert [(lane.model, lane.params) for lane in new.lanes.order_by("position")] == [
        ("demo", {"temperature": 0.2}), ("demo-slow", {})
    ]  # fmt: skip
    assert new.lanes.first().profile.owner == outsider  # matched to their own endpoint
    assert not new.messages.exists()
    assert owner_client.get(reverse("chat:setup_open") + "?setup=%%%").status_code == 400


def test_lane_management_views(owner_client, owner, outsider, client):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    owner_client.post(reverse("chat:lane_add", args=[conversation.pk]))
    lanes = list(conversation.lanes.order_by("position"))
    assert len(lanes) == 2
    owner_client.post(reverse("chat:lane_duplicate", args=[conversation.pk, lanes[0].pk]))
    a, b, c = conversation.lanes.order_by("position")
    b.model = "demo-slow"
    b.save()
    owner_client.post(reverse("chat:lane_move", args=[conversation.pk, b.pk, "left"]))
    assert [lane.model for lane in conversation.lanes.order_by("position")] == [
        "demo-slow", "demo", "demo"
    ]  # fmt: skip
    owner_client.post(reverse("chat:lane_remove", args=[conversation.pk, a.pk]))
    assert conversation.lanes.count() == 2
    settings_url = reverse("chat:lane_settings", args=[conversation.pk, c.pk])
    owner_client.post(
        settings_url, {f"lane{c.pk}-profile": profile.pk, f"lane{c.pk}-model": "demo-fast"}
    )
    c.refresh_from_db()
    assert c.model == "demo-fast"
    client.force_login(outsider)
    for name, args in [
        ("lane_add", [conversation.pk]),
        ("lane_remove", [conversation.pk, c.pk]),
        ("lane_duplicate", [conversation.pk, c.pk]),
        ("lane_move", [conversation.pk, c.pk, "left"]),
        ("lane_settings", [conversation.pk, c.pk]),
        ("blind_toggle", [conversation.pk]),
        ("vote", [conversation.pk, 1]),
    ]:
        assert client.post(reverse(f"chat:{name}", args=args)).status_code == 404, name
    assert client.get(reverse("chat:diff", args=[conversation.pk, 1])).status_code == 404
    assert conversation.lanes.count() == 2


def test_a_lane_can_have_its_own_tools(owner_client, owner):
    from chat.tools import TEMPLATES

    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane_b = Lane.objects.create(
        conversation=conversation, position=1, profile=profile, model="demo"
    )
    shared, own = TEMPLATES["weather"], TEMPLATES["calculator"]
    save = reverse("chat:tools_save", args=[conversation.pk])
    owner_client.post(save, {"tool_json": json.dumps(shared), "tool_enabled": "0",
                             "tool_mock": "", "tool_choice": ""})  # fmt: skip
    page = owner_client.post(
        save,
        {"tools_lane": lane_b.pk, "tool_json": json.dumps(own), "tool_enabled": "0",
         "tool_mock": "", "tool_choice": ""},
    )  # fmt: skip
    assert "Saved" in page.content.decode()
    conversation.refresh_from_db()
    _, (answer_a, answer_b) = turns.turn_save(conversation=conversation, content="Hi")
    lane_a = conversation.lanes.get(position=0)
    body_a = request_body.request_body_build(lane=lane_a, assistant=answer_a)
    lane_b.refresh_from_db()
    body_b = request_body.request_body_build(lane=lane_b, assistant=answer_b)
    assert body_a["tools"] == [shared] and body_b["tools"] == [own]
    owner_client.post(
        reverse("chat:tools_shared", args=[conversation.pk]), {"tools_lane": lane_b.pk}
    )
    lane_b.refresh_from_db()
    assert lane_b.tools is None
    panel = owner_client.get(
        reverse("chat:tools_panel", args=[conversation.pk]), {"tools_lane": lane_b.pk}
    ).content.decode()
    assert "get_weather" in panel and "Saving here gives lane B its own copy" in panel


def test_sync_makes_an_endpoint_or_model_change_apply_to_every_lane(owner_client, owner):
    demo = EndpointProfile.objects.get(owner=owner, is_demo=True)
    other = EndpointProfile.objects.create(
        owner=owner, name="Second endpoint", base_url="http://fake.invalid/v1"
    )
    conversation = conversations.conversation_create(owner=owner, profile=demo, model="demo")
    a = conversation.lanes.get()
    a.params = {"temperature": 0.1}
    a.save()
    b = Lane.objects.create(
        conversation=conversation, position=1, profile=demo, model="demo-fast",
        params={"temperature": 0.9}, system_prompt="B's own",
    )  # fmt: skip
    c = Lane.objects.create(conversation=conversation, position=2, profile=demo, model="demo")
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content
    assert b'id="sync-lanes" name="sync_lanes"' in page
    # every lane head sends the toggle (and the lane the panel shows)
    assert page.count(b'hx-include="[name=panel_lane], #sync-lanes"') == 3

    url = reverse("chat:lane_settings", args=[conversation.pk, b.pk])
    fields = {f"lane{b.pk}-profile": other.pk, f"lane{b.pk}-model": "demo-slow"}
    response = owner_client.post(url, {**fields, "sync_lanes": "1"}).content.decode()
    lanes = list(conversation.lanes.order_by("position"))
    assert [(lane.profile_id, lane.model) for lane in lanes] == [(other.pk, "demo-slow")] * 3
    # only the endpoint+model group follows: parameters and prompts stay per lane
    assert [lane.params for lane in lanes] == [{"temperature": 0.1}, {"temperature": 0.9}, {}]
    assert [lane.system_prompt for lane in lanes] == [None, "B's own", None]
    # the other heads come along out of band, showing the new model
    for lane in (a, c):
        head = response.split(f'id="lane-head-{lane.pk}"')[1].split("</form>")[0]
        assert head.startswith(' hx-swap-oob="outerHTML"')
        assert 'value="demo-slow"' in head

    # without the toggle, a change stays in its lane
    owner_client.post(url, {f"lane{b.pk}-profile": demo.pk, f"lane{b.pk}-model": "demo-fast"})
    assert [lane.model for lane in conversation.lanes.order_by("position")] == [
        "demo-slow", "demo-fast", "demo-slow"
    ]  # fmt: skip
    # with it, editing only the lane's own prompt moves no other lane
    response = owner_client.post(
        url,
        {f"lane{b.pk}-profile": demo.pk, f"lane{b.pk}-model": "demo-fast", "sync_lanes": "1",
         "own_system_prompt": "new", "use_own_prompt": "1"},
    ).content.decode()  # fmt: skip
    assert "hx-swap-oob" not in response
    assert [lane.model for lane in conversation.lanes.order_by("position")] == [
        "demo-slow", "demo-fast", "demo-slow"
    ]  # fmt: skip


async def test_apply_to_all_lanes_syncs_parameters_over_http_and_the_socket(owner, client):
    conversation = await comparison(owner, ["demo-fast", "demo-fast", "demo-fast"])
    lanes = await database_sync_to_async(lambda: list(conversation.lanes.order_by("position")))()
    await database_sync_to_async(client.force_login)(owner)
    save = reverse("chat:params_save", args=[conversation.pk])

    @database_sync_to_async
    def params():
        return [lane.params for lane in conversation.lanes.order_by("position")]

    # the panel's autosave (HTTP): one lane, or every lane with the toggle
    post = database_sync_to_async(client.post)
    await post(save, {"panel_lane": lanes[1].pk, "param:temperature": "0.4"})
    assert await params() == [{}, {"temperature": 0.4}, {}]
    await post(save, {"panel_lane": lanes[1].pk, "param:top_p": "0.5", "sync_params": "1"})
    assert await params() == [{"top_p": 0.5}] * 3

    # the composer sends the panel's values with the message (the socket path)
    frame = {"action": "send", "content": "Hi", "panel_lane": str(lanes[2].pk),
             "param:temperature": "0.2"}  # fmt: skip
    await run_turn(owner, conversation, frame, 3)
    assert await params() == [{"top_p": 0.5}] * 2 + [{"temperature": 0.2}]
    await run_turn(owner, conversation, {**frame, "param:seed": "7", "sync_params": "1"}, 3)
    assert await params() == [{"temperature": 0.2, "seed": 7}] * 3
    bodies = [m.request_body for m in await messages_of(conversation) if m.role == "assistant"]
    assert [b.get("temperature") for b in bodies[:3]] == [None, None, 0.2]
    assert [b.get("top_p") for b in bodies[:3]] == [0.5, 0.5, None]
    assert [(b.get("temperature"), b.get("seed")) for b in bodies[3:]] == [(0.2, 7)] * 3


async def test_a_send_keeps_a_lanes_own_tool_choice_as_the_tools_editor_does(owner):
    # The socket applies what a send carries as the HTTP autosave does: a lane's own
    # tools and the tool_choice shown with them are both kept (and sent).
    from chat.tools import TEMPLATES

    calc = TEMPLATES["calculator"]
    conversation = await comparison(owner, ["demo-fast", "demo-fast"])
    lanes = await database_sync_to_async(lambda: list(conversation.lanes.order_by("position")))()
    frame = {"action": "send", "content": "Hi", "tools_lane": str(lanes[1].pk),
             "tool_json": json.dumps(calc), "tool_mock": "14", "tool_enabled": "0",
             "tool_choice": "required"}  # fmt: skip
    await run_turn(owner, conversation, frame, 2)
    await database_sync_to_async(conversation.refresh_from_db)()
    await database_sync_to_async(lanes[1].refresh_from_db)()
    assert conversation.tool_choice == "required"
    assert lanes[1].tools == [{"tool": calc, "enabled": True, "mock": "14"}]
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    body_b = next(a.request_body for a in answers if a.lane_id == lanes[1].pk)
    assert body_b["tools"] == [calc] and body_b["tool_choice"] == "required"


async def test_a_send_naming_a_lane_not_of_this_conversation_is_refused(owner):
    # Over HTTP the panel's save is a 404 for such a lane; over the socket the send is
    # refused before anything is saved, the text kept in the composer.
    conversation = await comparison(owner, ["demo-fast", "demo-fast"])
    other = await comparison(owner, ["demo-fast"])
    foreign = await database_sync_to_async(lambda: other.lanes.get().pk)()
    before = fake_app().requests.total
    comm = await connect(owner, conversation)
    for wanted in (str(foreign), "nonsense"):
        frame = {"action": "send", "content": "Keep me", "panel_lane": wanted,
                 "param:temperature": "0.3"}  # fmt: skip
        await comm.send_to(text_data=json.dumps(frame))
        reply = await comm.receive_from(timeout=60)
        assert "That lane is not part of this conversation." in reply and "Keep me" in reply
    await comm.disconnect()
    assert fake_app().requests.total == before
    assert await messages_of(conversation) == []
    params = await database_sync_to_async(
        lambda: [lane.params for lane in conversation.lanes.all()]
    )()
    assert params == [{}, {}]


async def test_without_usage_tokens_per_s_is_estimated_and_labelled(owner, client):
    conversation = await comparison(owner, ["demo", "demo-fast"])
    for directive in ('{"tokens": 30, "usage": false}', '{"tokens": 30}'):
        frame = {"action": "send", "content": f"Go\n@fake {directive}"}
        await run_turn(owner, conversation, frame, 2)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    estimated, counted = answers[:2], answers[2:]
    for answer in estimated:
        m = answer.metrics
        assert answer.usage is None and m["tokens_estimated"] is True
        # ~4 characters a token over the time from the first token to the end
        expected = round(len(answer.content) / 4) / ((m["total_ms"] - m["ttft_ms"]) / 1000)
        assert m["tokens_per_s"] == pytest.approx(expected, rel=0.1)
        assert m["completion_tokens"] == round(len(answer.content) / 4)
    assert estimated[0].metrics["tokens_per_s"] == pytest.approx(60, rel=0.5)  # "demo"
    for answer in counted:
        assert answer.metrics["tokens_estimated"] is False
        assert answer.metrics["completion_tokens"] == answer.usage["completion_tokens"] == 30

    await database_sync_to_async(client.force_login)(owner)
    page = (
        await database_sync_to_async(client.get)(
            reverse("chat:conversation", args=[conversation.pk])
        )
    ).content.decode()
    turn_1, turn_2 = page.split('id="turn-1"')[1].split('id="turn-2"')
    for answer in estimated:  # each answer's metrics say it is an estimate
        article = turn_1.split(f'id="m-{answer.pk}"')[1].split("</article>")[0]
        assert f"≈ {num(answer.metrics['tokens_per_s'])} tok/s" in article
        assert "estimated from the text length" in article
    summary_speed = turn_1.split('<th scope="row">Speed</th>')[1].split("</tr>")[0]
    assert summary_speed.count("≈") == 2  # and so does the summary, per lane
    assert "≈" not in turn_2
    assert f"{num(counted[0].metrics['tokens_per_s'])} tok/s" in turn_2


def test_the_diff_view_shows_the_shown_answers_word_by_word(owner_client, owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane_b = Lane.objects.create(
        conversation=conversation, position=1, profile=profile, model="demo-fast"
    )
    _, (a, b) = turns.turn_save(conversation=conversation, content="Q")
    Message.objects.filter(pk=a.pk).update(status="complete", content="the quick <b>brown</b> fox")
    Message.objects.filter(pk=b.pk).update(status="complete", content="an older try", hidden=True)
    Message.objects.create(
        conversation=conversation, lane=lane_b, turn=1, role="assistant", attempt=1,
        status="complete", content="the slow <b>brown</b> fox jumps",
    )  # fmt: skip
    url = reverse("chat:diff", args=[conversation.pk, 1])
    body = owner_client.get(url, {"a": 0, "b": 1}).content.decode()
    assert "Turn 1: A vs B" in body
    diff = body.split('<div class="diff plain">')[1].split("</div>")[0]
    assert diff == (
        "the <del>quick</del><ins>slow</ins> &lt;b&gt;brown&lt;/b&gt; fox<ins> jumps</ins>"
    )  # the shown version of B, escaped, changes on word boundaries
    assert "older try" not in body
    reverse_diff = owner_client.get(url, {"a": 1, "b": 0}).content.decode()
    assert "<del>slow</del><ins>quick</ins>" in reverse_diff and "Turn 1: B vs A" in reverse_diff
    assert owner_client.get(url, {"a": 0, "b": 5}).status_code == 404
    # the summary offers the diff, and Branch with every lane's answer
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    summary = page.split('id="summary-1"')[1]
    assert url in summary
    branch = reverse("chat:message_branch", args=[conversation.pk, a.pk])
    assert branch in summary
    owner_client.post(branch, HTTP_HX_REQUEST="true")
    copy = Conversation.objects.filter(owner=owner).exclude(pk=conversation.pk).get()
    assert sorted(copy.messages.filter(role="assistant").values_list("content", flat=True)) == [
        "an older try", "the quick <b>brown</b> fox", "the slow <b>brown</b> fox jumps"
    ]  # fmt: skip


def test_the_sweep_view_makes_lanes_over_http(owner_client, owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    lane.params = {"top_p": 0.8}
    lane.save()
    url = reverse("chat:lane_sweep", args=[conversation.pk, lane.pk])
    form = owner_client.get(url).content.decode()
    assert "Sweep from lane A" in form and 'value="temperature"' in form
    for model in profile.model_names:
        assert f'value="{model}"' in form  # one lane per model of the endpoint
    bad = owner_client.post(url, {"kind": "param", "param": "temperature", "values": "0.5"})
    assert "at least two values" in bad.content.decode() and conversation.lanes.count() == 1
    bad = owner_client.post(url, {"kind": "param", "param": "temperature", "values": "0, 9"})
    assert bad.status_code == 200 and 'role="alert"' in bad.content.decode()
    assert conversation.lanes.count() == 1

    response = owner_client.post(
        url, {"kind": "param", "param": "temperature", "values": "0, 0.7, 1.4"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200 and response.headers["HX-Refresh"] == "true"
    lanes = list(conversation.lanes.order_by("position"))
    assert [(x.model, x.params) for x in lanes] == [
        ("demo", {"top_p": 0.8, "temperature": t}) for t in (0.0, 0.7, 1.4)
    ]
    response = owner_client.post(
        reverse("chat:lane_sweep", args=[conversation.pk, lanes[2].pk]),
        {"kind": "models", "models": ["demo-fast", "demo-slow"]},
    )
    assert response.status_code == 302
    assert [(x.model, x.params) for x in conversation.lanes.order_by("position")][2:] == [
        ("demo-fast", {"top_p": 0.8, "temperature": 1.4}),
        ("demo-slow", {"top_p": 0.8, "temperature": 1.4}),
    ]


async def test_stop_all_stops_every_lane_and_keeps_their_text(owner):
    conversation = await comparison(owner, ["demo", "demo-fast", "demo-slow"])
    comm = await connect(owner, conversation)
    # Held after 3 tokens by a gate that never opens: only Stop can end these answers.
    gate = new_gate()
    prompt = f'Long\n@fake {{"tokens": 200, "tps": 20, "hold_after": 3, "gate": "{gate}"}}'
    await comm.send_to(text_data=json.dumps({"action": "send", "content": prompt}))
    watch = Watch(comm)
    await watch.until(lambda: watch.streamed)
    streaming = [m for m in await messages_of(conversation) if m.role == "assistant"]
    await watch.until(lambda: {m.pk for m in streaming} <= watch.streamed)  # text from each
    assert list((await statuses_of(conversation)).values()) == ["streaming"] * 3
    await comm.send_to(text_data=json.dumps({"action": "stop"}))  # the composer's Stop
    await watch.until(lambda: len(watch.finished) == 3)
    await comm.disconnect()
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    assert [m.status for m in answers] == ["stopped"] * 3
    for answer in answers:
        assert answer.content and len(answer.content.split()) < 200  # partial, kept
        assert answer.metrics["total_ms"] > 0  # measured up to the Stop


async def test_regenerate_all_answers_the_last_turn_again_in_every_lane(owner):
    conversation = await comparison(owner, ["demo-fast", "demo-fast", "demo-fast"])
    await run_turn(owner, conversation, {"action": "send", "content": "One"}, 3)
    first = [m for m in await messages_of(conversation) if m.role == "assistant"]
    # the composer's Regenerate: lane "all", no turn (the last one)
    await run_turn(owner, conversation, {"action": "regenerate", "lane": "all"}, 3)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    new = [m for m in answers if m.pk not in {f.pk for f in first}]
    assert len(new) == 3
    assert sorted(m.lane_id for m in new) == sorted(m.lane_id for m in first)
    assert all(m.turn == 1 and m.attempt == 1 and m.status == "complete" for m in new)
    assert all(m.hidden for m in answers if m.pk in {f.pk for f in first})
    assert not any(m.hidden for m in new)


async def test_a_lanes_own_system_prompt_is_what_its_request_sends(owner, client):
    from chat.upstream.client import fake_app

    conversation = await comparison(owner, ["demo-fast", "demo-fast", "demo-fast"])
    lanes = await database_sync_to_async(lambda: list(conversation.lanes.order_by("position")))()
    await database_sync_to_async(client.force_login)(owner)
    post = database_sync_to_async(client.post)
    await post(reverse("chat:conversation_settings", args=[conversation.pk]),
               {"system_prompt": "Shared rules."})  # fmt: skip

    def head(lane, **own):
        fields = {f"lane{lane.pk}-profile": lane.profile_id, f"lane{lane.pk}-model": lane.model}
        url = reverse("chat:lane_settings", args=[conversation.pk, lane.pk])
        return post(url, {**fields, **own})

    await head(lanes[1], own_system_prompt="Talk like a pirate.", use_own_prompt="1")
    await head(lanes[2], own_system_prompt="", use_own_prompt="1")
    before = fake_app().requests.total
    await run_turn(owner, conversation, {"action": "send", "content": "Hello"}, 3)
    answers = sorted(
        (m for m in await messages_of(conversation) if m.role == "assistant"),
        key=lambda m: m.lane_id,
    )
    systems = [
        [x["content"] for x in a.request_body["messages"] if x["role"] == "system"] for a in answers
    ]
    assert systems == [["Shared rules."], ["Talk like a pirate."], []]  # C: own, and empty
    received = [
        r["json"] for r in list(fake_app().requests)[-(fake_app().requests.total - before) :]
    ]
    assert sorted(json.dumps(r["messages"][0]) for r in received) == sorted(
        json.dumps(a.request_body["messages"][0]) for a in answers
    )  # what the endpoint got is what the inspector shows
    # unticking the box gives the lane the shared prompt again
    await head(lanes[1], own_system_prompt="Talk like a pirate.")
    lane_b = await database_sync_to_async(Lane.objects.get)(pk=lanes[1].pk)
    assert lane_b.system_prompt is None


async def test_chat_to_comparison_and_back_keeps_the_history(owner, client):
    conversation = await comparison(owner, ["demo-fast"])
    await run_turn(owner, conversation, {"action": "send", "content": "First"}, 1)
    await run_turn(owner, conversation, {"action": "send", "content": "Second"}, 1)
    await database_sync_to_async(client.force_login)(owner)
    post = database_sync_to_async(client.post)
    get = database_sync_to_async(client.get)
    page_url = reverse("chat:conversation", args=[conversation.pk])

    await post(reverse("chat:lane_add", args=[conversation.pk]))  # chat -> comparison
    page = (await get(page_url)).content.decode()
    assert 'class="conv compare"' in page and page.count('class="msg msg-user"') == 2
    await run_turn(owner, conversation, {"action": "send", "content": "Third"}, 2)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    old, new_a, new_b = answers[:2], answers[2], answers[3]

    def said(body):
        return [(x["role"], x["content"]) for x in body["messages"]]

    # lane A continues with its own answers; the new lane B has only the shared turns
    assert said(new_a.request_body) == [
        ("user", "First"), ("assistant", old[0].content),
        ("user", "Second"), ("assistant", old[1].content), ("user", "Third"),
    ]  # fmt: skip
    assert said(new_b.request_body) == [("user", "First"), ("user", "Second"), ("user", "Third")]

    lane_b = await database_sync_to_async(Lane.objects.get)(pk=new_b.lane_id)
    await post(reverse("chat:lane_remove", args=[conversation.pk, lane_b.pk]))  # and back
    page = (await get(page_url)).content.decode()
    assert 'class="conv compare"' not in page and 'class="conv"' in page
    assert page.count('class="msg msg-user"') == 3
    for answer in [*old, new_a]:
        assert f'id="m-{answer.pk}"' in page
    assert f'id="m-{new_b.pk}"' not in page  # the removed lane's answer went with it
    await run_turn(owner, conversation, {"action": "send", "content": "Fourth"}, 1)
    last = [m for m in await messages_of(conversation) if m.role == "assistant"][-1]
    assert said(last.request_body)[:6] == said(new_a.request_body) + [("assistant", new_a.content)]


def test_an_all_bad_vote_lands_in_the_leaderboard(owner, owner_client):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-slow")
    conversation.blind = True
    conversation.save()
    for turn in (1, 2):
        _, answers = turns.turn_save(conversation=conversation, content=f"Q{turn}")
        Message.objects.filter(pk__in=[a.pk for a in answers]).update(status="complete")
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert 'value="all_bad"' in page.split('id="summary-1"')[1]
    vote = lambda t: reverse("chat:vote", args=[conversation.pk, t])  # noqa: E731
    owner_client.post(vote(1), {"verdict": "all_bad"})
    owner_client.post(vote(2), {"verdict": "winner", "winner": letter_of(conversation, 2, 0)})
    rows = {r["name"]: r for r in compare.leaderboard(owner=owner)}
    demo, slow = rows["Demo (offline) · demo"], rows["Demo (offline) · demo-slow"]
    assert (demo["votes"], demo["wins"], demo["bad"]) == (2, 1, 1)
    assert (slow["votes"], slow["losses"], slow["bad"]) == (2, 1, 1)
    assert demo["rating"] > slow["rating"]  # all bad is a tie; the win decides
    board = owner_client.get(reverse("chat:leaderboard")).content.decode()
    row = board.split("Demo (offline) · demo-slow</td>")[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", "", c.split("</td>")[0]) for c in re.split(r"<td[^>]*>", row)[1:]]
    # parameters, rating, interval, votes, wins, losses, ties, all bad
    assert cells == [
        "endpoint defaults",
        f"{slow['rating']:.0f}",
        "after 5 votes",
        "2",
        "0",
        "1",
        "0",
        "1",
    ]
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Voted: all bad" in page.split('id="summary-1"')[1]


def test_a_lane_without_a_model_is_on_the_leaderboard_as_the_endpoint_default(owner):
    profile = EndpointProfile.objects.create(
        owner=owner, name="Local", base_url="http://fake.invalid/default-model/v1",
        quirks={"model_optional": True},
    )  # fmt: skip
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="")
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo")
    conversation.blind = True
    conversation.save()
    _, answers = turns.turn_save(conversation=conversation, content="Q")
    Message.objects.filter(pk__in=[a.pk for a in answers]).update(status="complete")
    compare.vote_cast(conversation=conversation, turn=1, verdict="winner", winner=0)
    rows = {r["name"]: r for r in compare.leaderboard(owner=owner)}
    assert rows["Local · endpoint default"]["wins"] == 1
    assert rows["Local · demo"]["losses"] == 1


def test_the_summary_marks_only_a_clear_win_from_fixed_metrics(owner):
    """The summary's rule on fixed numbers (no clock): a win by 5 % or less is a tie,
    a win by more is marked, for the lane that has it; speed: bigger wins."""
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    a = conversation.lanes.get()
    b = Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo")

    def answer(lane, **metrics):
        return Message(conversation=conversation, lane=lane, role="assistant", turn=1,
                       status="complete", metrics=metrics)  # fmt: skip

    answers = [
        answer(a, ttft_ms=3000, total_ms=6000, tokens_per_s=10.0),
        answer(b, ttft_ms=3150, total_ms=3300, tokens_per_s=10.6),
    ]
    # TTFT: 3150 is 5 % over 3000, no more: a tie. Total: B by 82 %. Speed: B by 6 %.
    assert compare.summary([a, b], answers)["best"] == {"total": 1, "speed": 1}
    answers[1].metrics["ttft_ms"] = 3151  # just over 5 %: A wins it
    answers[1].metrics["tokens_per_s"] = 10.5  # exactly 5 % more: a tie
    assert compare.summary([a, b], answers)["best"] == {"ttft": 0, "total": 1}
