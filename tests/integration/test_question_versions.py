"""Edit in place with versions: an edited question gets ‹ 1/2 ›, each version keeps what
followed it (answers, later turns, edits further down), only the shown one is context."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat import branching, exports, frames, imports, request_body, turns
from chat.errors import ActionError
from chat.models import Conversation, Message
from chat.versions import path_of
from tests.integration.test_edit_branch import chat_with_turns, edit_frames

pytestmark = pytest.mark.django_db(transaction=True)


def finish(placeholders: list[Message], text: str) -> None:
    for answer in placeholders:
        Message.objects.filter(pk=answer.pk).update(
            status="complete", content=text, finish_reason="stop"
        )


def edit(conversation: Conversation, turn: int, text: str) -> list[Message]:
    """Edit the shown question at `turn` and let every lane answer `A:<text>`."""
    path = path_of(conversation)
    question = conversation.messages.filter(path.q()).get(turn=turn, role="user")
    _, placeholders, _ = branching.message_edit(
        conversation=conversation, message_id=question.pk, content=text
    )
    finish(placeholders, f"A:{text}")
    return placeholders


def send(conversation: Conversation, text: str) -> list[Message]:
    conversation.refresh_from_db()
    _, placeholders = turns.turn_save(conversation=conversation, content=text)
    finish(placeholders, f"A:{text}")
    return placeholders


def switch(client, conversation: Conversation, turn: int, branch: int):
    """Switch as a tab does; `response.frames` is what every tab of the conversation got."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(conversation.group_name, channel)
    response = client.post(
        reverse("chat:version_show", args=[conversation.pk, turn, branch]), HTTP_HX_REQUEST="true"
    )
    response.frames = ""
    if response.status_code == 204:
        response.frames = async_to_sync(layer.receive)(channel)["html"]
    async_to_sync(layer.group_discard)(conversation.group_name, channel)
    return response


def page_texts(conversation: Conversation) -> list[str]:
    """The shown path as the page and the next request see it."""
    conversation.refresh_from_db()
    shown = conversation.messages.filter(path_of(conversation).q(), hidden=False)
    return [m.content for m in shown.order_by("turn", "id")]


def group_at(conversation: Conversation, turn: int):
    conversation.refresh_from_db()
    return path_of(conversation).groups.get(turn)


async def test_an_edit_makes_a_version_in_place_not_a_copy(owner):
    conversation = await database_sync_to_async(chat_with_turns)(owner, 3)
    second = await database_sync_to_async(lambda: conversation.messages.get(turn=2, role="user"))()
    page = await edit_frames(owner, conversation, second, "Question 2, better\n@fake {}")
    # every tab drops the turns of the old version and gets the new question, ‹ 2/2 ›
    assert 'id="turn-2" hx-swap-oob="delete"' in page and 'id="turn-3" hx-swap-oob="delete"' in page
    assert 'aria-label="Previous version of this question"' in page and "2/2" in page
    assert "before edit" not in page
    assert await database_sync_to_async(Conversation.objects.filter(owner=owner).count)() == 1

    texts = await database_sync_to_async(page_texts)(conversation)
    assert texts[:2] == ["Question 1", "Answer 1 lane 0"] and len(texts) == 4
    assert texts[2].startswith("Question 2, better")
    # the old question, its answer and turn 3 are all still there, with their usage
    old = await database_sync_to_async(
        lambda: list(conversation.messages.filter(branch=0, turn__gte=2).order_by("turn", "id"))
    )()
    assert [m.content for m in old] == ["Question 2", "Answer 2 lane 0", "Question 3",
                                        "Answer 3 lane 0"]  # fmt: skip
    assert old[-1].usage == {"prompt_tokens": 3, "completion_tokens": 4}
    # the new answer's context: turn 1 and the edited question, nothing of the old version
    answer = await database_sync_to_async(
        lambda: conversation.messages.get(turn=2, role="assistant", branch=1)
    )()
    sent = [m["content"] for m in answer.request_body["messages"]]
    assert sent[:2] == ["Question 1", "Answer 1 lane 0"] and len(sent) == 3
    assert sent[2].startswith("Question 2, better")


def test_switching_back_shows_the_old_answers_and_later_turns_and_continues_there(
    owner, owner_client
):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 2, "Question 2, v2")
    assert page_texts(conversation)[2:] == ["Question 2, v2", "A:Question 2, v2"]

    response = switch(owner_client, conversation, 2, 0)
    assert response.status_code == 204  # the page's socket, like every other tab's, gets it
    html = response.frames
    # the turns the page showed from turn 2 down go (version 2 had no turn 3), old turns
    # 2 and 3 come back, at ‹ 1/2 ›
    assert 'id="turn-2" hx-swap-oob="delete"' in html
    assert (
        'id="turn-3" hx-swap-oob="delete"' not in html
        and '<section class="turn" id="turn-3"' in html
    )
    assert '<div id="messages" hx-swap-oob="beforeend">' in html
    assert "Answer 2 lane 0" in html and "Question 3" in html and "1/2" in html
    assert "Question 2, v2" not in html
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).text
    assert "Question 3" in page and "Answer 3 lane 0" in page and "Question 2, v2" not in page
    assert 'aria-label="Next version of this question"' in page

    # the composer continues the shown version: turn 4 after the old turn 3, and the
    # request holds only that version's turns
    placeholders = send(conversation, "Question 4 in v1")
    body = request_body.request_body_build(
        lane=placeholders[0].lane, assistant=Message.objects.get(pk=placeholders[0].pk)
    )
    contents = [m["content"] for m in body["messages"]]
    assert contents == ["Question 1", "Answer 1 lane 0", "Question 2", "Answer 2 lane 0",
                        "Question 3", "Answer 3 lane 0", "Question 4 in v1"]  # fmt: skip
    assert Message.objects.get(pk=placeholders[0].pk).turn == 4

    # and back to version 2: its own turns, without the turn just sent in version 1
    switch(owner_client, conversation, 2, 1)
    assert page_texts(conversation) == ["Question 1", "Answer 1 lane 0", "Question 2, v2",
                                        "A:Question 2, v2"]  # fmt: skip
    draft = request_body.draft_body_build(lane=conversation.lanes.get(), content="next")
    assert [m["content"] for m in draft["messages"]][-2:] == ["A:Question 2, v2", "next"]


def test_nested_edits_remember_the_version_chosen_further_down(owner, owner_client):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 1, "Q1 v2")
    send(conversation, "Q2 in v2")
    send(conversation, "Q3 in v2")
    edit(conversation, 3, "Q3 in v2, edited")
    assert group_at(conversation, 1).index == 2 and group_at(conversation, 3).index == 2
    edited = page_texts(conversation)
    assert edited == ["Q1 v2", "A:Q1 v2", "Q2 in v2", "A:Q2 in v2", "Q3 in v2, edited",
                      "A:Q3 in v2, edited"]  # fmt: skip

    # version 1 of turn 1: the original three turns, and no versions at turn 3
    switch(owner_client, conversation, 1, 0)
    assert page_texts(conversation) == [
        "Question 1", "Answer 1 lane 0", "Question 2", "Answer 2 lane 0", "Question 3",
        "Answer 3 lane 0",
    ]  # fmt: skip
    assert group_at(conversation, 3) is None
    # back to version 2: turn 3 is still at its second version, as left
    response = switch(owner_client, conversation, 1, group_at(conversation, 1).next)
    assert response.frames.count("2/2") == 2  # turn 1's versions and turn 3's
    assert page_texts(conversation) == edited
    # the first version of turn 3 inside version 2 is one switch away
    switch(owner_client, conversation, 3, group_at(conversation, 3).prev)
    assert page_texts(conversation)[-2:] == ["Q3 in v2", "A:Q3 in v2"]
    # editing an edited question again adds a third version to the same question
    edit(conversation, 1, "Q1 v3")
    group = group_at(conversation, 1)
    assert (group.index, group.count) == (3, 3)
    assert page_texts(conversation) == ["Q1 v3", "A:Q1 v3"]


def test_switching_is_refused_while_streaming_for_unknown_versions_and_strangers(
    owner, owner_client, outsider, client
):
    conversation = chat_with_turns(owner, 2)
    edit(conversation, 1, "Q1 v2")
    conversation.refresh_from_db()
    turns.turn_save(conversation=conversation, content="streaming")  # left streaming
    response = switch(owner_client, conversation, 1, 0)
    assert "still streaming" in response.text
    assert group_at(conversation, 1).shown == 1
    Message.objects.filter(status="streaming").update(status="complete")
    assert "No such version" in switch(owner_client, conversation, 1, 7).text
    assert "No such version" in switch(owner_client, conversation, 2, 0).text
    client.force_login(outsider)
    assert switch(client, conversation, 1, 0).status_code == 404
    assert group_at(conversation, 1).shown == 1


def test_switching_takes_the_same_queries_however_long_the_conversation(owner, owner_client):
    counts = []
    for length in (3, 12):
        conversation = chat_with_turns(owner, length)
        edit(conversation, 1, "edited")
        with CaptureQueriesContext(connection) as queries:
            assert switch(owner_client, conversation, 1, 0).status_code == 204
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_answers_and_regenerate_stay_in_their_version(owner, owner_client):
    conversation = chat_with_turns(owner, 2, lanes=2)
    edit(conversation, 2, "Q2 v2")
    # regenerate the latest turn of the shown version: an attempt in version 2 only
    placeholders = turns.answers_regenerate(conversation=conversation, positions=[1])
    finish(placeholders, "second try")
    assert placeholders[0].branch == 1 and placeholders[0].turn == 2
    lane = placeholders[0].lane
    assert Message.objects.filter(lane=lane, turn=2, branch=0, hidden=False).count() == 1
    # the attempt switch of a turn acts on the shown version's answers
    turns.attempt_show(lane=lane, turn=2, attempt=0)
    assert Message.objects.get(lane=lane, turn=2, branch=1, attempt=0).hidden is False
    assert Message.objects.get(lane=lane, turn=2, branch=0).hidden is False
    # a cell re-render shows this version's attempts, not the other version's answer
    html = frames.cell(lane, 2)
    assert "A:Q2 v2" in html and "Answer 2 lane 1" not in html and "1/2" in html
    # an answer of a version can be deleted alone, the other version's stays
    answer = conversation.messages.get(turn=2, branch=1, lane__position=0)
    owner_client.post(reverse("chat:message_delete", args=[conversation.pk, answer.pk]))
    assert not Message.objects.filter(pk=answer.pk).exists()
    assert conversation.messages.filter(turn=2, branch=0, lane__position=0).exists()
    # a message of a version not shown is not offered to edit
    hidden_question = conversation.messages.get(turn=2, branch=0, role="user")
    with pytest.raises(ActionError, match="version not shown"):
        branching.message_edit(
            conversation=conversation, message_id=hidden_question.pk, content="x"
        )


def test_deleting_a_question_with_versions_deletes_that_version_only(owner, owner_client):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 2, "Q2 v2")
    send(conversation, "Q3 in v2")
    question = conversation.messages.get(turn=2, branch=1, role="user")
    delete = reverse("chat:message_delete", args=[conversation.pk, question.pk])
    response = owner_client.post(delete, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    # version 2 and what followed it are gone; version 1 is shown, with no ‹ › left
    assert not conversation.messages.filter(branch=1).exists()
    assert page_texts(conversation) == [
        "Question 1", "Answer 1 lane 0", "Question 2", "Answer 2 lane 0", "Question 3",
        "Answer 3 lane 0",
    ]  # fmt: skip
    assert conversation.versions == {} and group_at(conversation, 2) is None


def test_deleting_the_original_version_keeps_the_turns_before_and_the_other_versions(
    owner, owner_client
):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 2, "Q2 v2")
    send(conversation, "Q3 in v2")
    edit(conversation, 3, "Q3 in v2, edited")
    edit(conversation, 2, "Q2 v3")
    switch(owner_client, conversation, 2, 0)
    question = conversation.messages.get(turn=2, branch=0, role="user")
    owner_client.post(reverse("chat:message_delete", args=[conversation.pk, question.pk]))
    # turn 1 stays; the original turns 2-3 go; version 2 (with its own versions of turn 3,
    # the edited one still shown) takes the original's place, version 3 stays beside it
    assert page_texts(conversation) == ["Question 1", "Answer 1 lane 0", "Q2 v2", "A:Q2 v2",
                                        "Q3 in v2, edited", "A:Q3 in v2, edited"]  # fmt: skip
    group = group_at(conversation, 2)
    assert (group.index, group.count) == (1, 2)
    assert group_at(conversation, 3).count == 2
    assert not conversation.messages.filter(content__in=["Question 2", "Question 3"]).exists()
    switch(owner_client, conversation, 2, group.next)
    assert page_texts(conversation)[2:] == ["Q2 v3", "A:Q2 v3"]
    # and the tree is still one an import accepts
    document = exports.conversation_export(conversation=conversation)
    copy = imports.import_data(owner=owner, data=document).conversations[0]
    assert page_texts(copy) == page_texts(conversation)


def test_export_and_import_keep_every_version(owner, owner_client):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 1, "Q1 v2")
    send(conversation, "Q2 in v2")
    edit(conversation, 2, "Q2 in v2, edited")
    switch(owner_client, conversation, 1, 0)
    conversation.refresh_from_db()
    document = exports.conversation_export(conversation=conversation)
    data = document["conversations"][0]
    assert data["versions"] == conversation.versions and data["versions"]["branches"]
    assert sorted({m["branch"] for m in data["messages"]}) == [0, 1, 2]

    response = owner_client.post(
        reverse("chat:import"),
        {"file": _upload(json.dumps(document))},
    )
    assert response.status_code in (200, 302), response.content[:500]
    copy = Conversation.objects.filter(owner=owner).exclude(pk=conversation.pk).get()
    assert copy.versions == conversation.versions
    assert page_texts(copy) == page_texts(conversation)
    # the old branch is reachable in the copy too
    switch(owner_client, copy, 1, 1)
    assert page_texts(copy) == ["Q1 v2", "A:Q1 v2", "Q2 in v2, edited", "A:Q2 in v2, edited"]
    # Markdown, like the page, is the version shown
    markdown = exports.conversation_markdown(conversation=copy)
    assert "Q2 in v2, edited" in markdown and "Question 3" not in markdown


def test_a_file_without_versions_still_imports(owner):
    conversation = chat_with_turns(owner, 2)
    document = exports.conversation_export(conversation=conversation)
    data = document["conversations"][0]
    del data["versions"]
    for message in data["messages"]:
        del message["branch"]
    result = imports.import_data(owner=owner, data=document)
    copy = result.conversations[0]
    assert copy.versions == {} and page_texts(copy) == page_texts(conversation)


@pytest.mark.parametrize(
    ("versions", "branch", "error"),
    [
        ({"branches": {"1": [2, 1], "2": [0, 1]}}, 0, "parent 2 is not an earlier branch"),
        ({"branches": {"1": [0, 1]}, "shown": {"0:1": 5}}, 0, "is not a version of that turn"),
        ({"branches": {"1": [0, 1]}, "shown": {"x": 1}}, 0, "a key is <origin branch>:<turn>"),
        ({"branches": {"1": [0, 1]}}, 3, "no version 3 in versions"),
        ({"branches": {"1": [0]}}, 0, "versions.branches.1"),
        ({"leaves": {}}, 0, "versions"),
    ],
)
def test_an_import_with_broken_versions_is_refused_clearly(owner, versions, branch, error):
    conversation = chat_with_turns(owner, 1)
    document = exports.conversation_export(conversation=conversation)
    document["conversations"][0]["versions"] = versions
    document["conversations"][0]["messages"][0]["branch"] = branch
    with pytest.raises(imports.ImportFailed) as failed:
        imports.import_data(owner=owner, data=document)
    assert any(error in line for line in failed.value.errors), failed.value.errors
    assert Conversation.objects.filter(owner=owner).count() == 1


def test_branch_copies_the_version_shown_only(owner, owner_client):
    conversation = chat_with_turns(owner, 3)
    edit(conversation, 2, "Q2 v2")
    answer = conversation.messages.get(turn=2, branch=1, role="assistant")
    response = owner_client.post(
        reverse("chat:message_branch", args=[conversation.pk, answer.pk]), HTTP_HX_REQUEST="true"
    )
    assert "HX-Redirect" in response.headers, response.text
    copy = Conversation.objects.exclude(pk=conversation.pk).get(owner=owner)
    assert copy.versions == {} and set(copy.messages.values_list("branch", flat=True)) == {0}
    assert page_texts(copy) == ["Question 1", "Answer 1 lane 0", "Q2 v2", "A:Q2 v2"]


def _upload(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("export.json", text.encode(), content_type="application/json")


def test_the_migration_keeps_what_sqlite_loses_when_it_rebuilds_a_table():
    """Adding the NOT NULL columns rebuilds chat_message and chat_conversation on SQLite,
    which drops the search triggers and the sidebar's index made outside the models."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL adds the columns in place")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'chat_message_fts_%' "
            "AND type = 'trigger' OR name = 'chat_conv_owner_pin_upd'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "chat_message_fts_ai", "chat_message_fts_ad", "chat_message_fts_au",
        "chat_conv_owner_pin_upd",
    }  # fmt: skip


def test_tool_results_for_an_answer_of_a_version_not_shown_are_refused(owner):
    conversation = chat_with_turns(owner, 1)
    caller = conversation.messages.get(turn=1, role="assistant")
    caller.tool_calls = [{"id": "call_1", "type": "function",
                          "function": {"name": "f", "arguments": "{}"}}]  # fmt: skip
    caller.save()
    edit(conversation, 1, "Asked differently")
    with pytest.raises(ActionError, match="version not shown"):
        turns.tool_results_submit(
            conversation=conversation, assistant_id=caller.pk, results={"call_1": "42"}
        )
    assert not conversation.messages.filter(role="tool").exists()
