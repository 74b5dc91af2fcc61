"""A send's requests go out while its turn is saved (the upstream's time to first token
and the transaction overlap), and a save that fails takes them back: nothing typed is
lost, no answer is left half made."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from chat import runs, turns
from chat.compare import lane_add
from chat.errors import ActionError
from chat.models import Message
from chat.request_body import request_body_build
from chat.upstream import fake_app
from tests.integration.test_consumer import connect, make_conversation, send, until_done

pytestmark = pytest.mark.django_db(transaction=True)


def _requests_seen() -> int:
    return fake_app().requests.total


def _wait_for_request(before: int, timeout: float = 60.0) -> bool:
    """On the database thread: whether the fake got a request while we waited (polled;
    the timeout is a safety net only, a busy machine may take seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _requests_seen() > before:
            return True
        time.sleep(0.005)
    return False


async def _early_tasks_done(timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = [t for t in asyncio.all_tasks() if t.get_name() == "run-early" and not t.done()]
        if not pending:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_the_request_is_on_its_way_before_the_turn_is_inserted(owner, monkeypatch):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    seen: list[bool] = []
    insert = Message.objects.bulk_create
    before = _requests_seen()

    def bulk_create(objs, *args, **kwargs):
        seen.append(_wait_for_request(before))
        return insert(objs, *args, **kwargs)

    monkeypatch.setattr(Message.objects, "bulk_create", bulk_create)
    await send(comm, 'Early\n@fake {"tokens": 8}')
    await until_done(comm)
    await comm.disconnect()
    assert seen == [True]
    question, answer = await database_sync_to_async(
        lambda: list(conversation.messages.order_by("turn", "id"))
    )()
    assert answer.status == "complete" and answer.content
    # What went upstream is the body saved with the answer, to the byte.
    sent = fake_app().requests[-1]["json"]
    assert sent == answer.request_body
    assert sent["messages"][-1] == {"role": "user", "content": question.content}


async def test_a_refused_save_takes_the_request_back_and_keeps_the_text(owner, monkeypatch):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    before = _requests_seen()

    def refused(objs, *args, **kwargs):
        assert _wait_for_request(before)  # the request is out: now the save fails
        raise ActionError("Refused at the last moment.")

    monkeypatch.setattr(Message.objects, "bulk_create", refused)
    await send(comm, 'Keep <i>me</i>\n@fake {"ttft_ms": 400, "tokens": 200, "tps": 20}')
    frame = await comm.receive_from(timeout=60)
    assert 'id="composer"' in frame and "Refused at the last moment." in frame
    assert "Keep &lt;i&gt;me&lt;/i&gt;" in frame  # the text stays in the composer
    assert await _early_tasks_done()  # the early request was cancelled, not left running
    assert await database_sync_to_async(conversation.messages.count)() == 0
    assert await comm.receive_nothing(timeout=0.6)  # no delta of a dropped answer
    await comm.disconnect()


async def test_a_failed_save_takes_the_request_back_and_keeps_the_text(owner, monkeypatch):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    before = _requests_seen()

    def broken(objs, *args, **kwargs):
        assert _wait_for_request(before)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Message.objects, "bulk_create", broken)
    await send(comm, 'Lost?\n@fake {"ttft_ms": 400, "tokens": 200, "tps": 20}')
    frame = await comm.receive_from(timeout=60)
    # A new composer (sendable again) with the text and what happened.
    assert 'id="composer"' in frame and "your message is kept" in frame
    assert "Lost?" in frame and "disk full" not in frame
    assert await _early_tasks_done()
    assert await database_sync_to_async(conversation.messages.count)() == 0
    await comm.disconnect()


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_early_bodies_equal_the_bodies_built_from_the_saved_turn(owner, mode):
    """The body built before the writes (history + the question not saved yet) is the
    one built from the saved history afterwards: two lanes, a system prompt of their own, a
    turn before, tools."""
    conversation = async_to_sync(make_conversation)(owner)
    conversation.mode = mode
    conversation.system_prompt = "Be brief."
    conversation.save()
    lane_add(conversation=conversation)
    lanes = list(conversation.lanes.order_by("position"))
    lanes[1].system_prompt = "Be verbose."
    lanes[1].params = {"temperature": 0.3}
    lanes[1].save()
    first, placeholders = turns.turn_save(conversation=conversation, content="One")
    for p in placeholders:
        Message.objects.filter(pk=p.pk).update(status="complete", content=f"Answer {p.lane_id}")
    conversation.refresh_from_db()
    handed = []
    _, placeholders = turns.turn_save(
        conversation=conversation, content="Two, with <b>tags</b>", early=handed.extend
    )
    assert len(handed) == 2
    for placeholder, (lane, body) in zip(placeholders, handed, strict=True):
        assert placeholder.request_body is body  # saved with the body sent early
        placeholder.refresh_from_db()
        again = request_body_build(lane=placeholder.lane, assistant=placeholder)
        assert again == body == placeholder.request_body
        assert lane.pk == placeholder.lane_id
    if mode == "chat":
        assert handed[1][1]["messages"][-2] == {
            "role": "assistant",
            "content": f"Answer {placeholders[1].lane_id}",
        }


def test_no_request_goes_out_for_a_send_that_will_be_refused(owner, settings):
    conversation = async_to_sync(make_conversation)(owner)
    turns.turn_save(conversation=conversation, content="One")  # still streaming
    handed = []
    with pytest.raises(ActionError, match="still streaming"):
        turns.turn_save(conversation=conversation, content="Two", early=handed.extend)
    assert handed == []
    settings.RUNS_PER_USER_MAX = 1
    other = async_to_sync(make_conversation)(owner)
    with pytest.raises(ActionError, match="limit"):
        turns.turn_save(conversation=other, content="Three", early=handed.extend)
    assert handed == []


async def test_a_quiet_stream_still_saves_its_heartbeat_about_every_interval(owner, settings):
    """The send loop has no timeout around its wait any more: a timer armed once per
    save wakes it. While the endpoint says nothing, the heartbeat must keep coming (five
    distinct beats before the first token; how many per second is a benchmark's figure)."""
    settings.RUN_SAVE_INTERVAL = 0.1
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    # The endpoint stays silent far longer than the test runs: every heartbeat seen below
    # came while it said nothing, however slowly this machine polls.
    await send(comm, 'Think first\n@fake {"ttft_ms": 600000, "tokens": 3}')

    @database_sync_to_async
    def beat():
        return (
            conversation.messages.filter(role="assistant")
            .values_list("heartbeat_at", "status")
            .first()
        )

    seen = set()
    deadline = time.monotonic() + 60  # a safety net only
    while len(seen) < 5 and time.monotonic() < deadline:
        row = await beat()
        if row is not None and row[1] == "streaming":
            seen.add(row[0])
        await asyncio.sleep(0.03)
    assert len(seen) >= 5, f"only {len(seen)} heartbeats while the endpoint was silent"
    await comm.send_to(text_data=json.dumps({"action": "stop"}))
    await until_done(comm, timeout=60)
    await comm.disconnect()


async def test_a_saved_turn_whose_announcement_fails_clears_the_composer_and_says_so(
    owner, monkeypatch
):
    """Saved, then the channel layer fails: the page must not offer the text for sending
    again (that would ask twice), and the request sent early is cancelled."""
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)

    async def layer_down(group, html):
        raise ConnectionError("the channel layer is down")

    monkeypatch.setattr(runs, "announce", layer_down)
    await send(comm, 'Saved\n@fake {"ttft_ms": 400, "tokens": 200, "tps": 20}')
    composer = await comm.receive_from(timeout=60)
    toast = await comm.receive_from(timeout=60)
    assert 'id="composer"' in composer and "@fake" not in composer  # emptied
    assert "Your message is saved, but its answers could not start" in toast
    assert await _early_tasks_done()
    question, answer = await database_sync_to_async(
        lambda: list(conversation.messages.order_by("turn", "id"))
    )()
    assert question.content.startswith("Saved") and answer.status == "streaming"
    assert runs.local_run(answer.pk) is None  # never launched
    await comm.disconnect()
