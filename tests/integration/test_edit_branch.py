"""Edit a sent message, regenerate any answer, delete one message, branch from here."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from chat import branching, conversations, turns
from chat.errors import ActionError
from chat.models import Conversation, EndpointProfile, Lane, Message
from chat.versions import path_of
from tests.integration.test_compare import comparison, run_turn
from tests.integration.test_consumer import connect, messages_of

pytestmark = pytest.mark.django_db(transaction=True)


def chat_with_turns(owner, n: int, *, lanes: int = 1) -> Conversation:
    """A conversation with `n` finished turns, written directly (no streaming needed)."""
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    for position in range(1, lanes):
        Lane.objects.create(
            conversation=conversation, position=position, profile=profile, model="demo-fast"
        )
    for turn in range(1, n + 1):
        _, answers = turns.turn_save(conversation=conversation, content=f"Question {turn}")
        for answer in answers:
            Message.objects.filter(pk=answer.pk).update(
                status="complete", content=f"Answer {turn} lane {answer.lane.position}",
                finish_reason="stop", usage={"prompt_tokens": 3, "completion_tokens": 4},
            )  # fmt: skip
    return conversation


def shown(conversation: Conversation) -> list[tuple[int, str, str]]:
    return [
        (m.turn, m.role, m.content)
        for m in conversation.messages.filter(hidden=False).order_by("turn", "id")
    ]


def shown_path(conversation: Conversation) -> list[tuple[int, str, str]]:
    """`shown`, of the version shown of each edited question."""
    conversation.refresh_from_db()
    path = path_of(conversation)
    return [
        (m.turn, m.role, m.content)
        for m in conversation.messages.filter(path.q(), hidden=False).order_by("turn", "id")
    ]


async def edit_frames(owner, conversation, message, content: str) -> str:
    """Edit `message` over the socket; every frame up to the first finished answer."""
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps({"action": "edit", "message": message.pk, "content": content})
    )
    frames = []
    while not any('data-role="assistant"' in f and 'data-status="complete"' in f for f in frames):
        frames.append(await comm.receive_from(timeout=10))
    await comm.disconnect()
    return "".join(frames)


async def test_edit_resends_and_keeps_what_followed_as_a_version(owner):
    conversation = await database_sync_to_async(chat_with_turns)(owner, 3)
    second = await database_sync_to_async(lambda: conversation.messages.get(turn=2, role="user"))()
    page = await edit_frames(owner, conversation, second, "Question 2, better\n@fake {}")
    # every tab drops the replaced turns and gets the new one, as version 2 of 2
    assert 'id="turn-2" hx-swap-oob="delete"' in page and 'id="turn-3" hx-swap-oob="delete"' in page
    assert "2/2" in page and "kept in <a href=" not in page

    after = await database_sync_to_async(shown_path)(conversation)
    assert [(t, r) for t, r, _ in after] == [(1, "user"), (1, "assistant"), (2, "user"),
                                             (2, "assistant")]  # fmt: skip
    assert after[2][2].startswith("Question 2, better")
    # the new answer's context is turn 1 plus the edited message, nothing from the old turns
    answer = await database_sync_to_async(
        lambda: conversation.messages.get(turn=2, role="assistant", branch=1)
    )()
    sent = [m["content"] for m in answer.request_body["messages"]]
    assert sent[:2] == ["Question 1", "Answer 1 lane 0"] and "Question 3" not in sent

    # the conversation as it was is version 1, in the same conversation, with its usage;
    # no "(before edit)" copy is made any more
    assert await database_sync_to_async(Conversation.objects.filter(owner=owner).count)() == 1
    before = await database_sync_to_async(
        lambda: [m.content for m in conversation.messages.filter(branch=0)]
    )()
    assert before == [
        "Question 1", "Answer 1 lane 0", "Question 2", "Answer 2 lane 0",
        "Question 3", "Answer 3 lane 0",
    ]  # fmt: skip
    old = await database_sync_to_async(
        lambda: conversation.messages.get(turn=3, role="assistant", branch=0)
    )()
    assert old.usage == {"prompt_tokens": 3, "completion_tokens": 4}


def test_a_bad_edit_changes_nothing(owner):
    conversation = chat_with_turns(owner, 2)
    first = conversation.messages.get(turn=1, role="user")
    before = shown(conversation)
    with pytest.raises(ActionError, match="Type a message"):
        branching.message_edit(conversation=conversation, message_id=first.pk, content="  \n ")
    answer = conversation.messages.get(turn=1, role="assistant")
    with pytest.raises(ActionError, match="Only your own messages"):
        branching.message_edit(conversation=conversation, message_id=answer.pk, content="x")
    with pytest.raises(ActionError, match="not part of this conversation"):
        branching.message_edit(conversation=conversation, message_id="nope", content="x")
    assert shown(conversation) == before
    assert Conversation.objects.filter(owner=owner).count() == 1  # no copy left behind
    conversation.refresh_from_db()
    assert conversation.versions == {}  # no version left behind either


def test_editing_the_last_unanswered_message_makes_a_version_at_that_turn(owner):
    conversation = chat_with_turns(owner, 1)
    user, _ = turns.turn_save(conversation=conversation, content="Unanswered")
    Message.objects.filter(conversation=conversation, turn=2, role="assistant").delete()
    new, placeholders, _ = branching.message_edit(
        conversation=conversation, message_id=user.pk, content="Answer this"
    )
    assert new.turn == 2 and new.branch == 1 and len(placeholders) == 1
    assert Conversation.objects.filter(owner=owner).count() == 1


def test_an_edit_waits_for_the_streaming_answer(owner):
    conversation = chat_with_turns(owner, 1)
    turns.turn_save(conversation=conversation, content="Still streaming")
    first = conversation.messages.get(turn=1, role="user")
    with pytest.raises(ActionError, match="still streaming"):
        branching.message_edit(conversation=conversation, message_id=first.pk, content="x")


async def test_regenerate_an_earlier_answer_keeps_it_as_a_version(owner):
    conversation = await comparison(owner, ["demo-fast", "demo-fast"])
    await run_turn(owner, conversation, {"action": "send", "content": "One"}, 2)
    await run_turn(owner, conversation, {"action": "send", "content": "Two"}, 2)
    await run_turn(owner, conversation, {"action": "regenerate", "lane": "1", "turn": "1"}, 1)
    answers = [m for m in await messages_of(conversation) if m.role == "assistant"]
    lane1 = await database_sync_to_async(lambda: conversation.lanes.get(position=1).pk)()
    lane1_turn1 = sorted((m for m in answers if m.turn == 1 and m.lane_id == lane1),
                         key=lambda m: m.attempt)  # fmt: skip
    assert [(m.attempt, m.hidden, m.status) for m in lane1_turn1] == [
        (0, True, "complete"), (1, False, "complete")
    ]  # fmt: skip
    # its context is turn 1's question only; turn 2 is left as it was
    assert [m["content"] for m in lane1_turn1[1].request_body["messages"]][-1] == "One"
    assert sum(1 for m in answers if m.turn == 2) == 2
    assert all(not m.hidden for m in answers if m.turn == 2)


def test_delete_one_answer_one_turn_and_a_tool_call_with_its_results(owner, owner_client):
    conversation = chat_with_turns(owner, 3, lanes=2)
    url = lambda m: reverse("chat:message_delete", args=[conversation.pk, m.pk])  # noqa: E731
    # an answer: only it goes; the cell is re-rendered without it
    answer = conversation.messages.get(turn=1, lane__position=1)
    response = owner_client.post(url(answer), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f'id="cell-1-{answer.lane_id}"' in response.text
    assert not Message.objects.filter(pk=answer.pk).exists()
    assert conversation.messages.filter(turn=1).count() == 2
    # a user message takes its turn's answers with it
    question = conversation.messages.get(turn=2, role="user")
    response = owner_client.post(url(question))
    assert 'id="turn-2" hx-swap-oob="delete"' in response.text
    assert not conversation.messages.filter(turn=2).exists()
    assert conversation.messages.filter(turn=3).count() == 3
    # an answer that called a tool takes the tool's result; a result alone is refused
    lane = conversation.lanes.get(position=0)
    caller = conversation.messages.get(turn=3, lane=lane)
    caller.tool_calls = [{"id": "call_1", "type": "function",
                          "function": {"name": "f", "arguments": "{}"}}]  # fmt: skip
    caller.save()
    result = Message.objects.create(conversation=conversation, lane=lane, turn=3, role="tool",
                                    tool_call_id="call_1", name="f", content="42")  # fmt: skip
    response = owner_client.post(url(result))
    assert "belongs to its call" in response.text and Message.objects.filter(pk=result.pk).exists()
    owner_client.post(url(caller))
    assert not Message.objects.filter(pk__in=[caller.pk, result.pk]).exists()


def test_deleting_the_shown_version_shows_the_newest_other_one(owner, owner_client):
    conversation = chat_with_turns(owner, 1)
    lane = conversation.lanes.get()
    first = conversation.messages.get(turn=1, role="assistant")
    second = turns.answer_attempt_new(lane=lane, turn=1, branch=0)
    Message.objects.filter(pk=second.pk).update(status="complete", content="second try")
    owner_client.post(reverse("chat:message_delete", args=[conversation.pk, second.pk]))
    first.refresh_from_db()
    assert first.hidden is False


def test_branch_from_here_copies_up_to_the_message(owner, owner_client, outsider):
    conversation = chat_with_turns(owner, 3, lanes=2)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    conversation.tools = [{"tool": tool, "enabled": True, "mock": ""}]
    conversation.save()
    lane = conversation.lanes.get(position=1)
    lane.params = {"temperature": 0.3}
    lane.save()
    answer = conversation.messages.get(turn=2, lane=lane)
    response = owner_client.post(
        reverse("chat:message_branch", args=[conversation.pk, answer.pk]), HTTP_HX_REQUEST="true"
    )
    assert "HX-Redirect" in response.headers, response.text
    branch = Conversation.objects.exclude(pk=conversation.pk).get(owner=owner)
    assert response.headers["HX-Redirect"] == reverse("chat:conversation", args=[branch.pk])
    assert branch.title.endswith("(branch)") and branch.tools == conversation.tools
    lanes = branch.lanes.order_by("position")
    assert [(lane.position, lane.model, lane.params) for lane in lanes] == [
        (0, "demo", {}), (1, "demo-fast", {"temperature": 0.3})
    ]  # fmt: skip
    assert [c for _, _, c in shown(branch)] == [c for _, _, c in shown(conversation)][:6]
    # from a user message: the branch ends with that question, ready to be answered
    question = conversation.messages.get(turn=3, role="user")
    owner_client.post(reverse("chat:message_branch", args=[conversation.pk, question.pk]))
    newest = Conversation.objects.filter(owner=owner).order_by("-created_at").first()
    assert shown(newest)[-1] == (3, "user", "Question 3")
    placeholders = turns.answers_regenerate(conversation=newest)
    assert len(placeholders) == 2
    # the original is untouched
    assert len(shown(conversation)) == 9
