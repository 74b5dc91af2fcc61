"""Side-by-side comparison: independent lanes, metrics against the fake's timings,
sweeps, repeats, regenerate with versions, diff, blind votes, shareable setups."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import compare, services
from chat.models import Conversation, EndpointProfile, Lane, Message
from tests.integration.test_consumer import connect, messages_of

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def comparison(user, models: list[str]) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = services.conversation_create(owner=user, profile=profile, model=models[0])
    for position, model in enumerate(models[1:], start=1):
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model=model
        )
    return conversation


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
    conversation = await comparison(owner, ["demo-fast", "demo", "demo-slow", "no-such-model"])
    order = await run_turn(
        owner, conversation, {"action": "send", "content": 'Race\n@fake {"tokens": 24}'}, 4
    )
    messages = await messages_of(conversation)
    by_model = {m.model: m for m in messages if m.role == "assistant"}
    # the failing lane fails alone, and first; the fast one beats the others
    assert by_model["no-such-model"].status == "error"
    assert by_model["no-such-model"].error["status"] == 404
    for model in ("demo-fast", "demo", "demo-slow"):
        assert by_model[model].status == "complete", model
        assert len(by_model[model].content.split()) > 5
    assert order.index(by_model["demo-fast"].pk) < order.index(by_model["demo"].pk)
    assert order[-1] == by_model["demo-slow"].pk
    # "demo": 150 ms to the first token, then 60 tokens/s; "demo-slow": 8 tokens/s
    demo = by_model["demo"].metrics
    assert 100 <= demo["ttft_ms"] <= 600
    assert demo["tokens_per_s"] == pytest.approx(60, rel=0.3)
    assert demo["tokens_estimated"] is False
    assert by_model["demo-slow"].metrics["tokens_per_s"] == pytest.approx(8, rel=0.3)
    assert by_model["demo-fast"].metrics["total_ms"] < demo["total_ms"]


async def test_stop_one_lane_leaves_the_others_running(owner):
    conversation = await comparison(owner, ["demo", "demo", "demo"])
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps({"action": "send", "content": 'Long\n@fake {"tokens": 60, "tps": 40}'})
    )
    await comm.receive_from(timeout=5)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    await asyncio.sleep(0.3)
    await comm.send_to(text_data=json.dumps({"action": "stop", "message": answers[1].pk}))
    await asyncio.sleep(3)
    await comm.disconnect()
    statuses = {m.pk: m.status for m in await messages_of(conversation)}
    assert statuses[answers[1].pk] == "stopped"
    assert statuses[answers[0].pk] == statuses[answers[2].pk] == "complete"


def test_a_sweep_makes_lanes_that_differ_in_one_parameter(owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = services.conversation_create(owner=owner, profile=profile, model="demo")
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
    with pytest.raises(compare.CompareError, match="at most 6"):
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
    history = await database_sync_to_async(services.lane_history)(lane=lane, before_turn=2)
    assert [m.pk for m in history if m.role == "assistant"] == [first[1].pk]


def test_blind_votes_land_in_the_leaderboard(owner, owner_client):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = services.conversation_create(owner=owner, profile=profile, model="demo")
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-slow")
    conversation.blind = True
    conversation.save()
    for turn in (1, 2, 3):
        user, answers = services.turn_send(conversation=conversation, content=f"Q{turn}")
        Message.objects.filter(pk__in=[a.pk for a in answers]).update(status="complete")
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "demo-slow" not in page.split('id="messages"')[1]  # identities hidden in the turns
    assert "A is better" in page
    url = lambda t: reverse("chat:vote", args=[conversation.pk, t])  # noqa: E731
    owner_client.post(url(1), {"verdict": "winner", "winner": "1"})
    owner_client.post(url(2), {"verdict": "winner", "winner": "1"})
    owner_client.post(url(3), {"verdict": "tie"})
    rows = {r["name"]: r for r in compare.leaderboard(owner=owner)}
    slow, fast = rows["Demo (offline) · demo-slow"], rows["Demo (offline) · demo"]
    assert (slow["wins"], slow["losses"], slow["ties"]) == (2, 0, 1)
    assert (fast["wins"], fast["losses"], fast["ties"]) == (0, 2, 1)
    assert slow["score"] == pytest.approx(2.5 / 3)
    board = owner_client.get(reverse("chat:leaderboard")).content.decode()
    assert board.index("demo-slow") < board.index("· demo<")
    # after the vote, that turn's identities are shown
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Voted: B better" in page


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
    conversation = services.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    lane.params = {"temperature": 0.2}
    lane.save()
    Lane.objects.create(conversation=conversation, position=1, profile=profile, model="demo-slow")
    services.turn_send(conversation=conversation, content="history that must not travel")
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
    conversation = services.conversation_create(owner=owner, profile=profile, model="demo")
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
    conversation = services.conversation_create(owner=owner, profile=profile, model="demo")
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
    _, (answer_a, answer_b) = services.turn_send(conversation=conversation, content="Hi")
    lane_a = conversation.lanes.get(position=0)
    body_a = services.request_body_build(lane=lane_a, assistant=answer_a)
    lane_b.refresh_from_db()
    body_b = services.request_body_build(lane=lane_b, assistant=answer_b)
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
    conversation = services.conversation_create(owner=owner, profile=demo, model="demo")
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
    assert page.count(b'hx-include="#sync-lanes"') == 3  # every lane head sends the toggle

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
