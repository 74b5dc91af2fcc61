"""Edit, branch and delete single messages of a conversation.

A branch is a copy made through the lossless export/import path (chat.exports and
chat.imports), so it carries the lanes, parameters, tools, attempts, usage and votes exactly
as an export would, and stays correct as those formats grow.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, Q

from chat import exports, imports, services
from chat.models import Conversation, Lane, Message
from chat.services import ActionError

BRANCH_SUFFIX = " (branch)"
BEFORE_EDIT_SUFFIX = " (before edit)"


def _refuse_if_busy(conversation: Conversation) -> None:
    services.messages_mark_interrupted(conversation=conversation)
    if conversation.messages.filter(status=Message.Status.STREAMING).exists():
        raise ActionError("An answer is still streaming: wait for it or press Stop.")


def _message(conversation: Conversation, message_id: Any) -> Message:
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        raise ActionError("That message is not part of this conversation.") from None
    message = conversation.messages.filter(pk=pk).select_related("lane").first()
    if message is None:
        raise ActionError("That message is not part of this conversation.")
    return message


def conversation_branch(
    *, conversation: Conversation, upto_turn: int, with_answers: bool, title: str
) -> Conversation:
    """A new conversation of the same owner holding the turns before `upto_turn`, that
    turn's user message and, with `with_answers`, its answers (every attempt)."""
    document = exports.conversation_export(conversation=conversation)
    data = document["conversations"][0]

    def keep(message: dict[str, Any]) -> bool:
        if message["turn"] != upto_turn:
            return message["turn"] < upto_turn
        return with_answers or message["lane"] is None

    data["messages"] = [m for m in data["messages"] if keep(m)]
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
) -> tuple[Conversation | None, Message, list[Message], int]:
    """Replace a user message with `content` and answer it again in every lane.

    What followed the message (its answers and the later turns) is not destroyed: when
    there is any, the conversation as it was is first copied into a branch, returned
    first. Returns (branch or None, new user message, placeholders, last turn before)."""
    with transaction.atomic():
        _refuse_if_busy(conversation)
        message = _message(conversation, message_id)
        if message.role != Message.Role.USER:
            raise ActionError("Only your own messages can be edited; regenerate an answer.")
        last_turn = conversation.messages.aggregate(m=Max("turn"))["m"] or message.turn
        later = conversation.messages.filter(
            Q(turn__gt=message.turn) | Q(turn=message.turn, lane__isnull=False)
        ).exists()
        branch = None
        if later:
            branch = conversation_branch(
                conversation=conversation,
                upto_turn=last_turn,
                with_answers=True,
                title=f"{conversation}{BEFORE_EDIT_SUFFIX}",
            )
        images = [
            part
            for part in (message.content_parts or [])
            if isinstance(part, dict) and part.get("type") == "image_url"
        ]
        conversation.messages.filter(turn__gte=message.turn).delete()
        conversation.votes.filter(turn__gte=message.turn).delete()
        # turn_send validates the text; an ActionError rolls the whole edit back.
        user_message, placeholders = services.turn_send(
            conversation=conversation, content=content, images=images or None
        )
    return branch, user_message, placeholders, last_turn


def message_delete(*, conversation: Conversation, message_id: Any) -> tuple[str, Any]:
    """Delete one message. A user message takes its turn's answers with it (an answer
    without its question would be sent as context without one); an answer that called
    tools takes its tool results (a result without its call is refused by the API).
    Returns ("turn", turn) when the whole turn went, else ("cell", (lane, turn))."""
    with transaction.atomic():
        _refuse_if_busy(conversation)
        message = _message(conversation, message_id)
        if message.role == Message.Role.USER or message.lane_id is None:
            conversation.messages.filter(turn=message.turn).delete()
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
                    lane=lane, turn=message.turn, role=Message.Role.TOOL, tool_call_id__in=ids
                ).values_list("pk", flat=True)
            )
        Message.objects.filter(pk__in=doomed).delete()
        answers = Message.objects.filter(lane=lane, turn=message.turn)
        if answers.exists() and not answers.filter(hidden=False).exists():
            # The shown version went: show the newest remaining one.
            newest = answers.aggregate(m=Max("attempt"))["m"]
            answers.filter(attempt=newest).update(hidden=False)
        conversation.save(update_fields=["updated_at"])
        return "cell", (lane, message.turn)
