"""Edit, branch and delete single messages of a conversation.

An edit makes a new version of the question (chat/versions.py): what followed the old
text stays in its version, one ‹ › away. A branch is a copy as a new conversation, made
through the lossless export/import path (chat.exports and chat.imports), so it carries the
lanes, parameters, tools, attempts, usage and votes exactly as an export would, and stays
correct as those formats grow.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, Q

from chat import conversations, exports, imports, turns, versions
from chat.errors import ActionError
from chat.models import Conversation, Lane, Message
from chat.versions import Group, Path, Tree, path_of

BRANCH_SUFFIX = " (branch)"
BUSY = "An answer is still streaming: wait for it or press Stop."


def _refuse_if_busy(conversation: Conversation) -> None:
    conversations.messages_mark_interrupted(conversation=conversation)
    if conversation.messages.live_streaming().exists():
        raise ActionError(BUSY)


def _message(conversation: Conversation, message_id: Any, path: Path | None = None) -> Message:
    """One message of the conversation, of the version shown (what the page offers)."""
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        raise ActionError("That message is not part of this conversation.") from None
    message = conversation.messages.filter(pk=pk).select_related("lane").first()
    if message is None:
        raise ActionError("That message is not part of this conversation.")
    if not (path or path_of(conversation)).contains(message):
        raise ActionError("That message belongs to a version not shown; reload the page.")
    return message


def _locked(conversation: Conversation) -> Conversation:
    """The conversation row locked (two edits at once would each add a version to a
    stale tree), its fields copied onto the caller's object."""
    fresh = Conversation.objects.select_for_update().get(pk=conversation.pk)
    conversation.versions = fresh.versions
    return conversation


def conversation_branch(
    *, conversation: Conversation, upto_turn: int, with_answers: bool, title: str
) -> Conversation:
    """A new conversation of the same owner holding the turns before `upto_turn`, that
    turn's user message and, with `with_answers`, its answers (every attempt)."""
    document = exports.conversation_export(conversation=conversation)
    data = document["conversations"][0]
    # Only the version shown: the copy starts with one version of each question.
    path = path_of(conversation)

    def keep(message: dict[str, Any]) -> bool:
        if not path.contains(message):
            return False
        if message["turn"] != upto_turn:
            return message["turn"] < upto_turn
        return with_answers or message["lane"] is None

    data["messages"] = [{**m, "branch": 0} for m in data["messages"] if keep(m)]
    data["versions"] = {}
    last_vote_turn = upto_turn if with_answers else upto_turn - 1
    data["votes"] = [v for v in data["votes"] if v["turn"] <= last_vote_turn]
    data["title"] = (title or "Untitled")[:200]
    data["pinned"] = False
    # A branch is new: it goes to the top of the history.
    data.pop("created_at", None)
    data.pop("updated_at", None)
    try:
        result = imports.import_data(owner=conversation.owner, data=document)
    except imports.ImportFailed as exc:  # a bug, not the user's doing: say what failed
        raise ActionError(f"Could not copy the conversation: {exc}") from exc
    return result.conversations[0]


def branch_from(*, conversation: Conversation, message_id: Any) -> Conversation:
    """Branch from here: a new conversation up to and including this message."""
    with transaction.atomic():
        _refuse_if_busy(conversation)
        message = _message(conversation, message_id)
        return conversation_branch(
            conversation=conversation,
            upto_turn=message.turn,
            with_answers=message.lane_id is not None,
            title=f"{conversation}{BRANCH_SUFFIX}",
        )


def message_edit(
    *, conversation: Conversation, message_id: Any, content: str
) -> tuple[Message, list[Message], int]:
    """Send `content` as a new version of a question and answer it in every lane.

    Nothing is destroyed: the old text, its answers and every later turn stay in their
    version, which the question's ‹ › switches back to. Returns (the new user message,
    the placeholders, the last turn shown before the edit)."""
    with transaction.atomic():
        _locked(conversation)
        _refuse_if_busy(conversation)
        tree = Tree(conversation.versions)
        path = tree.path()
        message = _message(conversation, message_id, path)
        if message.role != Message.Role.USER:
            raise ActionError("Only your own messages can be edited; regenerate an answer.")
        turn = message.turn
        last_turn = versions.next_turn(conversation=conversation, path=path) - 1
        group = path.groups.get(turn)
        branch = tree.add(parent=message.branch, turn=turn)
        tree.show(origin=group.origin if group else message.branch, turn=turn, branch=branch)
        conversation.versions = tree.data()
        conversation.save(update_fields=["versions", "updated_at"])
        images = [
            part
            for part in (message.content_parts or [])
            if isinstance(part, dict) and part.get("type") == "image_url"
        ]
        # Votes are per turn number: the old answers' verdicts do not judge the new ones.
        conversation.votes.filter(turn__gte=turn).delete()
        # turn_save validates the text; an ActionError rolls the whole edit back.
        user_message, placeholders = turns.turn_save(
            conversation=conversation, content=content, images=images or None, turn=turn
        )
    return user_message, placeholders, max(last_turn, turn)


def version_show(*, conversation: Conversation, turn: int, branch: int) -> tuple[int, Path]:
    """Show another version of the question at `turn`: it and what followed it become
    the page and the context of the next turn. Returns (the last turn shown before, the
    new path)."""
    with transaction.atomic():
        _locked(conversation)
        _refuse_if_busy(conversation)
        tree = Tree(conversation.versions)
        path = tree.path()
        group = path.groups.get(turn)
        if group is None or branch not in group.members:
            raise ActionError("No such version of that question.")
        last_turn = versions.next_turn(conversation=conversation, path=path) - 1
        tree.show(origin=group.origin, turn=turn, branch=branch)
        conversation.versions = tree.data()
        # Not activity: the conversation keeps its place in the history.
        Conversation.objects.filter(pk=conversation.pk).update(versions=conversation.versions)
    return last_turn, tree.path()


def _version_delete(
    conversation: Conversation, path: Path, group: Group, member: int
) -> tuple[int, int, Path]:
    """One version of an edited question goes, with what followed it in that version;
    the one before it is shown. Returns (turn, last turn shown before, the new path)."""
    last_turn = versions.next_turn(conversation=conversation, path=path) - 1
    tree = Tree(conversation.versions)
    gone, promoted = tree.remove(group=group, member=member)
    doomed = Q(branch__in=gone)
    if promoted is not None:
        doomed |= Q(branch=group.origin, turn__gte=group.turn)
    conversation.messages.filter(doomed).delete()
    if promoted is not None:
        conversation.messages.filter(branch=promoted).update(branch=group.origin)
    conversation.versions = tree.data()
    conversation.save(update_fields=["versions", "updated_at"])
    return group.turn, last_turn, tree.path()


def message_delete(*, conversation: Conversation, message_id: Any) -> tuple[str, Any]:
    """Delete one message. A user message takes its turn's answers with it (an answer
    without its question would be sent as context without one); an answer that called
    tools takes its tool results (a result without its call is refused by the API). A
    question with versions takes its version: what followed it there goes too.
    Returns ("turn", turn) when the whole turn went, ("version", (turn, last turn, path))
    when a version did, else ("cell", (lane, turn))."""
    with transaction.atomic():
        _locked(conversation)
        _refuse_if_busy(conversation)
        path = path_of(conversation)
        message = _message(conversation, message_id, path)
        if message.role == Message.Role.USER or message.lane_id is None:
            group = path.groups.get(message.turn)
            if group is not None:
                return "version", _version_delete(conversation, path, group, message.branch)
            conversation.messages.filter(turn=message.turn, branch=message.branch).delete()
            conversation.votes.filter(turn=message.turn).delete()
            conversation.save(update_fields=["updated_at"])
            return "turn", message.turn
        if message.role == Message.Role.TOOL:
            raise ActionError(
                "A tool result belongs to its call: delete the answer that made the call."
            )
        lane: Lane = message.lane
        doomed = [message.pk]
        if message.tool_calls:
            ids = [c.get("id") for c in message.tool_calls if isinstance(c, dict)]
            doomed += list(
                conversation.messages.filter(
                    lane=lane,
                    turn=message.turn,
                    branch=message.branch,
                    role=Message.Role.TOOL,
                    tool_call_id__in=ids,
                ).values_list("pk", flat=True)
            )
        Message.objects.filter(pk__in=doomed).delete()
        answers = Message.objects.filter(lane=lane, turn=message.turn, branch=message.branch)
        if answers.exists() and not answers.filter(hidden=False).exists():
            # The shown version went: show the newest remaining one.
            newest = answers.aggregate(m=Max("attempt"))["m"]
            answers.filter(attempt=newest).update(hidden=False)
        conversation.save(update_fields=["updated_at"])
        return "cell", (lane, message.turn)
