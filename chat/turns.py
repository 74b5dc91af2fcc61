"""Turns: saving a question and a streaming placeholder per lane (the caller starts
the runs), tool results, new attempts at an answer, and the limits every send checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from chat.compare.blind import shuffle_turn
from chat.errors import ActionError
from chat.history import sidebar_changed
from chat.models import Conversation, Lane, Message
from chat.render import SCRIPT_LINE_RE, plain_text
from chat.request_body import request_body_build
from chat.versions import Path, next_turn, path_of


def title_from(text: str) -> str:
    """A conversation's first title: its first question as plain words (no markdown, no
    demo scripting line), cut at 80 characters."""
    line = plain_text(text) or " ".join(SCRIPT_LINE_RE.sub("", text).split())
    return line[:80] + ("…" if len(line) > 80 else "")


def quota_check(*, conversation: Conversation, new_runs: int) -> None:
    """Refuse (before saving anything) a send that would pass the user's limits."""
    owner_id = conversation.owner_id
    if settings.RUNS_PER_USER_MAX:
        streaming = Message.objects.filter(conversation__owner_id=owner_id).live_streaming()
        count = streaming.count()
        if count + new_runs > settings.RUNS_PER_USER_MAX:
            raise ActionError(
                f"You have {count} answers streaming and this needs {new_runs} more; "
                f"the limit is {settings.RUNS_PER_USER_MAX} at once. Wait for some to finish "
                "or stop them."
            )
    if settings.ANSWERS_PER_MINUTE:
        since = timezone.now() - timedelta(seconds=60)
        recent = list(
            Message.objects.filter(
                conversation__owner_id=owner_id,
                role=Message.Role.ASSISTANT,
                created_at__gte=since,
                # Only answers a run started carry a heartbeat: imported and branched
                # messages are not requests to anyone.
                heartbeat_at__isnull=False,
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)[: settings.ANSWERS_PER_MINUTE + new_runs]
        )
        if len(recent) + new_runs > settings.ANSWERS_PER_MINUTE:
            wait = max(1, int((recent[0] - since).total_seconds()) + 1) if recent else 60
            raise ActionError(
                f"Too many answers: the limit is {settings.ANSWERS_PER_MINUTE} a minute. "
                f"Try again in {wait} s; your message is kept."
            )


def lane_ready(lane: Lane) -> bool:
    """An endpoint, and a model unless the endpoint has a default one."""
    return lane.profile is not None and bool(lane.model or lane.profile.model_optional)


def _content_clean(content: str) -> str:
    """A question as it is saved, or ActionError for one that cannot be sent."""
    # PostgreSQL refuses U+0000 in text; keep the rest of what was typed.
    content = content.strip("\n").replace("\x00", "\ufffd")
    if not content.strip():
        raise ActionError("Type a message first.")
    if len(content) > settings.MAX_MESSAGE_CHARS:
        raise ActionError(
            f"The message is {len(content):,} characters; the limit is "
            f"{settings.MAX_MESSAGE_CHARS:,}."
        )
    return content


def _lanes_ready(conversation: Conversation) -> list[Lane]:
    """The conversation's lanes, each with an endpoint and a model, else ActionError."""
    lanes = list(conversation.lanes.select_related("profile"))
    problems = [
        f"Lane {lane.position + 1}: pick an endpoint" if lane.profile is None
        else f"Lane {lane.position + 1}: pick a model"
        for lane in lanes
        if not lane_ready(lane)
    ]  # fmt: skip
    if problems:
        # Refused before saving; the composer keeps the text so nothing is lost.
        raise ActionError("; ".join(problems))
    return lanes


# Called with each lane and the exact body its answer will be asked with, on the
# database thread, before the turn is written (see turn_save).
EarlyStart = Callable[[list[tuple[Lane, dict[str, Any]]]], None]


def turn_save(
    *,
    conversation: Conversation,
    content: str,
    images: list[dict[str, Any]] | None = None,
    turn: int | None = None,
    early: EarlyStart | None = None,
) -> tuple[Message, list[Message]]:
    """Save the user's message and one streaming placeholder per lane, at the end of the
    shown version (or at `turn`, an edit's first), each placeholder with the exact body
    its answer is asked with. The caller starts the runs.

    Everything is read inside the turn's transaction, which holds the conversation
    (SQLite: the write lock, taken at BEGIN IMMEDIATE; PostgreSQL: its row), so no other
    send can take this turn meanwhile. With ``early``, the bodies are handed over once
    the checks passed and before anything is written: the caller may send the requests
    at once, so the endpoint's time to first token overlaps the writes. If the
    transaction then fails, nothing is saved and the caller must drop those requests
    (the text stays in the composer)."""
    content = _content_clean(content)
    if images and conversation.mode != Conversation.Mode.CHAT:
        raise ActionError("Images need a chat conversation, not completions mode.")
    lanes = _lanes_ready(conversation)
    question = Message(
        conversation=conversation,
        role=Message.Role.USER,
        content=content,
        content_parts=[{"type": "text", "text": content}, *images] if images else None,
    )
    with transaction.atomic():
        if connection.features.has_select_for_update:
            Conversation.objects.select_for_update().filter(pk=conversation.pk).exists()
        path = path_of(conversation)
        last_turn = _busy_or_last_turn(conversation, path)
        quota_check(conversation=conversation, new_runs=len(lanes))
        if turn is None:
            turn = max(last_turn + 1, path.leaf_start)
        question.branch, question.turn = path.leaf, turn
        placeholders = [Message.placeholder(lane, branch=path.leaf, turn=turn) for lane in lanes]
        for placeholder in placeholders:
            placeholder.request_body = request_body_build(
                lane=placeholder.lane, assistant=placeholder, question=question
            )
        if early is not None:
            early([(p.lane, p.request_body) for p in placeholders])
        if not conversation.title or not last_turn:
            conversation.title = conversation.title or title_from(content)
            # A new conversation (or one that was untitled) shows up in every open page:
            # the history lists a conversation from its first message on.
            sidebar_changed(owner_id=conversation.owner_id)
        conversation.save(update_fields=["title", "updated_at"])
        # One INSERT for the question and the placeholders (ids come back from it).
        Message.objects.bulk_create([question, *placeholders])
        # Blind: the order this turn shows its answers in, drawn now among the lanes
        # answering it (a lane added later comes last, with no answer).
        shuffle_turn(conversation, turn, lanes, salt=question.pk)
    return question, placeholders


def tool_results_submit(
    *, conversation: Conversation, assistant_id: int, results: dict[str, str]
) -> tuple[Message, list[Message], Message]:
    """Save the user's results for an answer's tool calls and a streaming placeholder
    for the model's next answer in that lane. Returns (the answer, results, placeholder)."""
    with transaction.atomic():
        answer = (
            Message.objects.select_related("lane__profile")
            .filter(pk=assistant_id, conversation=conversation, role=Message.Role.ASSISTANT)
            .first()
        )
        if answer is None or not answer.tool_calls or answer.lane is None:
            raise ActionError("That answer has no tool calls to answer.")
        path = path_of(conversation)
        if not path.contains(answer):
            raise ActionError("That answer belongs to a version not shown; reload the page.")
        later = Message.objects.filter(path.q(), lane=answer.lane, id__gt=answer.pk).exists()
        if later or answer.status != Message.Status.COMPLETE:
            raise ActionError("These tool calls were already answered.")
        if conversation.messages.live_streaming().exists():
            raise ActionError("An answer is still streaming: wait for it or press Stop.")
        missing = [
            call["function"]["name"] or call["id"]
            for call in answer.tool_calls
            if not results.get(call["id"], "").strip()
        ]
        if missing:
            raise ActionError(f"Give a result for every call (missing: {', '.join(missing)}).")
        quota_check(conversation=conversation, new_runs=1)
        tool_messages = [
            Message.objects.create(
                conversation=conversation,
                lane=answer.lane,
                branch=answer.branch,
                turn=answer.turn,
                role=Message.Role.TOOL,
                tool_call_id=call["id"],
                name=call["function"]["name"],
                content=results[call["id"]].replace("\x00", "\ufffd"),
            )
            for call in answer.tool_calls
        ]
        placeholder = Message.placeholder(answer.lane, branch=answer.branch, turn=answer.turn)
        placeholder.conversation = conversation
        placeholder.save()
        conversation.save(update_fields=["updated_at"])
    return answer, tool_messages, placeholders_ready([placeholder])[0]


def placeholders_ready(placeholders: list[Message]) -> list[Message]:
    """Build and save each placeholder's exact request body (set on the object too), so
    an action returns placeholders that a Run is built from as they are (``runs.start``),
    and that render with their fields set."""
    for message in placeholders:
        body = request_body_build(lane=message.lane, assistant=message)
        Message.objects.filter(pk=message.pk).update(request_body=body)
        message.request_body = body
    return placeholders


def _busy_or_last_turn(conversation: Conversation, path: Path) -> int:
    """The last turn of the shown version (0 for none), or ActionError while an answer
    of the conversation is still streaming: one query for both."""
    on_path = path.q()
    row = conversation.messages.aggregate(
        last=Max("turn", filter=on_path) if on_path else Max("turn"),
        busy=Count("pk", filter=Message.objects.live_q()),
    )
    if row["busy"]:
        raise ActionError("An answer is still streaming: wait for it or press Stop.")
    return row["last"] or 0


def _busy(conversation: Conversation) -> bool:
    return conversation.messages.live_streaming().exists()


def answer_attempt_new(*, lane: Lane, turn: int, branch: int) -> Message:
    """A new try at a lane's answer to a turn; the earlier ones stay as alternatives."""
    previous = Message.objects.filter(lane=lane, turn=turn, branch=branch)
    attempt = (previous.aggregate(m=Max("attempt"))["m"] or 0) + 1
    previous.update(hidden=True)
    answer = Message.placeholder(lane, branch=branch, turn=turn, attempt=attempt)
    answer.save()
    return answer


def answers_regenerate(
    *, conversation: Conversation, positions: list[int] | None = None, turn: int | None = None
) -> list[Message]:
    """Regenerate a turn's answer (default: the latest turn) in the given lanes (None:
    every lane). The earlier answers stay as versions; later turns are left as they are."""
    with transaction.atomic():
        if _busy(conversation):
            raise ActionError("An answer is still streaming: wait for it or press Stop.")
        path = path_of(conversation)
        if turn is None:
            turn = next_turn(conversation=conversation, path=path) - 1
        branch = path.branch_at(turn)
        asked = conversation.messages.filter(turn=turn, branch=branch, lane__isnull=True)
        if not turn or not asked.exists():
            raise ActionError("There is no message to answer again yet.")
        lanes = list(conversation.lanes.select_related("profile"))
        if positions is not None:
            lanes = [lane for lane in lanes if lane.position in positions]
        if not lanes:
            raise ActionError("No such lane.")
        for lane in lanes:
            if not lane_ready(lane):
                raise ActionError(f"Lane {lane.position + 1}: pick an endpoint and a model.")
        quota_check(conversation=conversation, new_runs=len(lanes))
        placeholders = [answer_attempt_new(lane=lane, turn=turn, branch=branch) for lane in lanes]
        conversation.save(update_fields=["updated_at"])
    return placeholders_ready(placeholders)


def attempt_next(*, lane: Lane, turn: int, branch: int) -> Message:
    """Another attempt at a lane's answer (a repeat), ready to run."""
    return placeholders_ready([answer_attempt_new(lane=lane, turn=turn, branch=branch)])[0]


def attempt_show(*, lane: Lane, turn: int, attempt: int) -> None:
    """Show another attempt of a lane's answer: it becomes the lane's context."""
    with transaction.atomic():
        branch = path_of(lane.conversation).branch_at(turn)
        answers = Message.objects.filter(lane=lane, turn=turn, branch=branch)
        if not answers.filter(attempt=attempt).exists():
            raise ActionError("No such version.")
        if answers.live_streaming().exists():
            raise ActionError("Wait for the answer to finish.")
        answers.exclude(attempt=attempt).update(hidden=True)
        answers.filter(attempt=attempt).update(hidden=False)
