"""Every live page fragment: what the socket sends and runs broadcast, one function each.

These are rendered outside any request, so ``{% csrf_token %}`` renders nothing in them:
a form here must post with ``hx-post`` (its token comes from ``<body hx-headers>``) or be
sent over the socket (``ws-send``), never as a plain POST
(tests/security/test_live_fragments_csrf.py).

The delta envelope, ``<span id="{field}-{message id}" hx-swap-oob="...">``, is written
here only (``_envelope``); app.js, chat/bench/wire.py and the tests read it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from chat.compare import summary as compare_summary
from chat.compare import turn_rows
from chat.compare.blind import turn_letters, turn_order
from chat.models import Conversation, Lane, Message
from chat.usage import usage_totals as totals_of
from chat.versions import path_of

_ENVELOPE = '<span id="{}-{}" hx-swap-oob="{}">{}</span>'


def _envelope(message_id: int, field: str, text: str, *, replace: bool) -> SafeString:
    # The hot path: one small, fixed, escaped shape, so format_html rather than a template.
    return format_html(_ENVELOPE, field, message_id, "innerHTML" if replace else "beforeend", text)


def delta(message_id: int, field: str, text: str, *, replace: bool = False) -> str:
    """New text of a streaming field (appended), or all of it (``replace``: a snapshot)."""
    return _envelope(message_id, field, text, replace=replace)


def block(message_id: int, field: str, text: str, block: dict[str, Any]) -> str:
    """New text and the markdown blocks it completed: the page appends the text to the
    field's tail, then turns all of the tail but its last ``keep`` characters into the
    blocks (``chat.mdstream``). A snapshot (``replace``) carries the whole text."""
    flags = "".join(
        f" data-{flag}" for flag in ("refs", "plain", "open", "fill") if block.get(flag)
    )
    return _envelope(message_id, field, text, replace=bool(block.get("replace"))) + format_html(
        '<template data-keep="{}"{}>{}</template>',
        int(block["keep"]),
        mark_safe(flags),  # fixed names
        mark_safe(block["html"]),  # chat.render's sanitised output
    )


def tool_calls(message_id: int, calls: list[dict[str, Any]], *, replace: bool = False) -> str:
    """The tool calls of a streaming answer, as they are announced (or all, ``replace``)."""
    return render_to_string(
        "chat/_tool_call_live.html", {"message_id": message_id, "calls": calls, "replace": replace}
    )


def toast(text: str) -> str:
    return render_to_string("chat/_toast.html", {"text": text})


def composer(conversation: Conversation, *, error: str = "", text: str = "") -> str:
    """The composer, emptied after a send, or keeping ``text`` with ``error``.

    A text over MAX_MESSAGE_CHARS is not sent back: a frame may carry up to ~28 MB (room
    for four images), and echoing that to the page that already has it cost the server
    and the socket as much again. The page keeps its own textarea instead (hx-preserve),
    so nothing typed is lost."""
    keep = len(text) > settings.MAX_MESSAGE_CHARS
    return render_to_string(
        "chat/_composer.html",
        {
            "oob": True,
            "error": error,
            "text": "" if keep else text,
            "keep_text": keep,
            "conversation": conversation,
        },
    )


def message(message: Message, *, awaiting_ids: set[int] | None = None) -> str:
    """A message re-rendered in place; ``awaiting_ids``: answers whose tool calls get the
    results form."""
    context: dict[str, Any] = {"message": message, "oob": True}
    if awaiting_ids is not None:
        context["awaiting_ids"] = awaiting_ids
    return render_to_string("chat/_message.html", context)


def answer_final(answer: Message) -> str:
    """A run's answer as saved, with its turn's summary and the conversation's totals.
    Just finished, so it is its lane's latest: tool calls get the results form."""
    return (
        message(answer, awaiting_ids={answer.pk})
        + summary(answer.conversation, answer.turn)
        + usage_totals(answer.conversation)
    )


def tool_turn(answer: Message, tool_messages: list[Message], placeholder: Message) -> str:
    """The answered message loses its results form; the results and the next answer follow."""
    return message(answer) + render_to_string(
        "chat/_cell_append.html",
        {"turn": answer.turn, "lane_id": answer.lane_id,
         "messages": [*tool_messages, placeholder]},
    )  # fmt: skip


def turn(
    conversation: Conversation,
    user_message: Message,
    placeholders: list[Message],
    lanes: list[Lane] | None = None,
) -> str:
    """A new turn: the question and each lane's streaming placeholder, and the heading
    (a conversation opened untitled takes its title from its first question)."""
    if lanes is None:
        lanes = list(conversation.lanes.select_related("profile"))
    path = path_of(conversation)
    row = turn_rows(conversation, lanes, [user_message, *placeholders], path=path)[0]
    context = {"row": row, "conversation": conversation, "lanes": lanes, "oob": True}
    return render_to_string("chat/_turn.html", context) + render_to_string(
        "chat/_conv_title.html", context
    )


def turns_deleted(first: int, last: int) -> str:
    """Turns ``first`` to ``last`` removed from the page (another version replaces them)."""
    return format_html_join(
        "", '<div id="turn-{}" hx-swap-oob="delete"></div>', ((t,) for t in range(first, last + 1))
    )


def version_shown(conversation: Conversation, turn: int, last_turn: int, path: Any) -> str:
    """Another version of the turns from ``turn`` down: the ones shown (to ``last_turn``)
    are dropped, the version's turns follow, with the conversation's totals."""
    lanes = list(conversation.lanes.select_related("profile"))
    history = list(
        conversation.messages.filter(path.q(), turn__gte=turn)
        .select_related("lane")
        .defer("raw_response", "output_items")
    )
    votes = {vote.turn: vote for vote in conversation.votes.filter(turn__gte=turn)}
    rows = turn_rows(conversation, lanes, history, votes, path)
    last_by_lane: dict[int, Message] = {}
    for message in history:
        if message.lane_id and not message.hidden:
            last_by_lane[message.lane_id] = message
    awaiting = {
        m.pk for m in last_by_lane.values() if m.role == Message.Role.ASSISTANT and m.tool_calls
    }
    gone = turns_deleted(turn, last_turn)
    html = render_to_string(
        "chat/_turns_oob.html",
        {
            "rows": rows,
            "conversation": conversation,
            "lanes": lanes,
            "voted_turns": set(votes),
            "awaiting_ids": awaiting,
        },
    )
    return gone + html + usage_totals(conversation)


def conversation_list(context: dict[str, Any]) -> str:
    """The sidebar's list of conversations (``history.sidebar_page``), as it changes."""
    return render_to_string("chat/_conv_list_oob.html", context)


def cell(lane: Lane, turn: int) -> str:
    """A lane's cell of a turn, re-rendered (after a new attempt or a version switch),
    with the turn's summary."""
    conversation = lane.conversation
    lanes = list(conversation.lanes.select_related("profile"))
    branch = path_of(conversation).branch_at(turn)
    history = list(
        Message.objects.filter(conversation=conversation, turn=turn, branch=branch).defer(
            "raw_response"
        )
    )
    (row,) = turn_rows(conversation, lanes, history)
    shown = next(c for c in row["cells"] if c.lane.pk == lane.pk)
    return render_to_string(
        "chat/_cell.html",
        {"cell": shown, "row": row, "conversation": conversation, "oob": True},
    ) + summary(conversation, turn)


def summary(conversation: Any, turn: int) -> str:
    """The turn's comparison summary, refreshed as each lane finishes ("" for one lane)."""
    lanes = list(conversation.lanes.all())
    if len(lanes) < 2:
        return ""
    branch = path_of(conversation).branch_at(turn)
    answers = list(
        Message.objects.filter(
            conversation=conversation, turn=turn, branch=branch, lane__isnull=False
        ).only(
            "id", "lane_id", "role", "status", "hidden", "metrics", "usage", "finish_reason",
            "attempt", "turn",
        )
    )  # fmt: skip
    vote = conversation.votes.filter(turn=turn).first()
    lanes = turn_order(conversation, turn, lanes)
    letters = turn_letters(conversation, turn, lanes)
    return render_to_string(
        "chat/_summary.html",
        {"summary": compare_summary(lanes, answers, vote, letters), "turn": turn, "oob": True,
         "conversation": conversation},
    )  # fmt: skip


def usage_totals(conversation: Conversation) -> str:
    """The conversation's totals line, to swap in as an answer completes."""

    answers = conversation.messages.filter(
        path_of(conversation).q(), hidden=False, usage__isnull=False
    ).only("conversation_id", "usage", "metrics")  # the id: no query per row
    totals = totals_of(messages=answers)
    return render_to_string("chat/_totals.html", {"totals": totals, "oob": True})
