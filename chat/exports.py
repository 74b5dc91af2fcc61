"""Conversations out of the app: a lossless JSON document and a readable Markdown transcript.

The JSON format (``"format": "playground.conversations"``, ``"version": 1``)::

    {"format": "playground.conversations", "version": 1, "exported_at": "<ISO 8601>",
     "conversations": [{
        "id", "title", "mode", "system_prompt", "tools", "tool_choice", "pinned", "blind",
        "created_at", "updated_at",
        "lanes": [{"position", "profile": {"name", "base_url"} | null, "model", "params",
                   "system_prompt", "tools", "api"}],
        "messages": [{"lane": <lane position> | null, "turn", "role", "model", "content",
                      "content_parts", "reasoning", "tool_calls", "choices", "chosen",
                      "logprobs", "raw_response", "tool_call_id", "name", "status",
                      "finish_reason", "usage", "metrics", "request_body", "error",
                      "attempt", "hidden", "branch", "api", "response_id",
                      "output_items", "created_at"}],
        "votes": [{"turn", "verdict", "winner_position", "lanes", "created_at"}],
        "versions": {"branches": {"<id>": [<parent>, <turn>]}, "shown": {...}}}]}

``branch`` and ``versions`` (optional: a file without them has one version of each
question) carry the edited questions' versions, see chat/versions.py. ``api`` (a lane's
wire API, "" for its endpoint's default; an answer's, "responses" or ""), ``response_id``
and ``output_items`` (a Responses API answer's id and items) are optional too.

An endpoint is named by its name and base URL, never by its key or headers. Left out on
purpose: the share token (a capability, not content), heartbeats, and HTML rendered from
the text (``rendered``, a choice's ``html``): the importer renders it again rather than
trust HTML from a file. Messages are in (turn, id) order.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from chat.compare.blind import lane_letter
from chat.compare.lanes import label
from chat.models import Conversation, Lane, Message, Vote
from chat.versions import path_of

FORMAT = "playground.conversations"
VERSION = 1
BATCH = 100

MESSAGE_FIELDS = (
    "turn", "role", "model", "content", "content_parts", "reasoning", "tool_calls",
    "choices", "chosen", "logprobs", "raw_response", "tool_call_id", "name", "status",
    "finish_reason", "usage", "metrics", "request_body", "error", "attempt", "hidden",
    "branch", "api", "response_id", "output_items",
)  # fmt: skip
LANE_FIELDS = ("position", "model", "params", "system_prompt", "tools", "api")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lane_data(lane: Lane) -> dict[str, Any]:
    data: dict[str, Any] = {"position": lane.position}
    profile = lane.profile
    data["profile"] = {"name": profile.name, "base_url": profile.base_url} if profile else None
    data.update({f: getattr(lane, f) for f in LANE_FIELDS if f != "position"})
    return data


def message_data(message: Message, positions: dict[int, int]) -> dict[str, Any]:
    data: dict[str, Any] = {"lane": positions.get(message.lane_id) if message.lane_id else None}
    for name in MESSAGE_FIELDS:
        data[name] = getattr(message, name)
    if data["choices"]:
        # Rendered HTML is derived from the text and re-made on import.
        data["choices"] = [
            {k: v for k, v in choice.items() if k != "html"} if isinstance(choice, dict) else choice
            for choice in data["choices"]
        ]
    data["created_at"] = _iso(message.created_at)
    return data


def conversation_data(
    conversation: Conversation,
    lanes: list[Lane],
    messages: Iterable[Message],
    votes: Iterable[Vote],
) -> dict[str, Any]:
    positions = {lane.pk: lane.position for lane in lanes}
    return {
        "id": str(conversation.pk),
        "title": conversation.title,
        "mode": conversation.mode,
        "system_prompt": conversation.system_prompt,
        "tools": conversation.tools,
        "tool_choice": conversation.tool_choice,
        "pinned": conversation.pinned,
        "blind": conversation.blind,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "lanes": [lane_data(lane) for lane in lanes],
        "messages": [message_data(m, positions) for m in messages],
        "votes": [
            {
                "turn": vote.turn,
                "verdict": vote.verdict,
                "winner_position": vote.winner_position,
                "lanes": vote.lanes,
                "created_at": _iso(vote.created_at),
            }
            for vote in votes
        ],
        "versions": conversation.versions or {},
    }


def _batch_data(conversations: list[Conversation]) -> list[dict[str, Any]]:
    """A few conversations in four queries, whatever their number and length."""
    ids = [c.pk for c in conversations]
    lanes: dict[Any, list[Lane]] = defaultdict(list)
    for lane in Lane.objects.filter(conversation_id__in=ids).select_related("profile"):
        lanes[lane.conversation_id].append(lane)
    messages: dict[Any, list[Message]] = defaultdict(list)
    for message in Message.objects.filter(conversation_id__in=ids).order_by("turn", "id"):
        messages[message.conversation_id].append(message)
    votes: dict[Any, list[Vote]] = defaultdict(list)
    for vote in Vote.objects.filter(conversation_id__in=ids).order_by("turn"):
        votes[vote.conversation_id].append(vote)
    return [
        conversation_data(
            c,
            sorted(lanes[c.pk], key=lambda lane: lane.position),
            messages[c.pk],
            votes[c.pk],
        )
        for c in conversations
    ]


def document(conversations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _iso(timezone.now()),
        "conversations": conversations,
    }


def conversation_export(*, conversation: Conversation) -> dict[str, Any]:
    return document(_batch_data([conversation]))


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False)


def _owner_batches(owner: AbstractBaseUser) -> Iterator[list[Conversation]]:
    ids = list(
        Conversation.objects.filter(owner=owner)
        .listed()
        .order_by("-pinned", "-updated_at")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found = Conversation.objects.in_bulk(chunk)
        yield [found[pk] for pk in chunk if pk in found]


def owner_export_chunks(*, owner: AbstractBaseUser) -> Iterator[str]:
    """Every listed conversation of ``owner`` (those with a message, as the sidebar) as
    one JSON document, written a batch at a time so memory stays bounded whatever the
    history's size."""
    head = dumps(document([]))
    opening, closing = head.rsplit('"conversations": []', 1)
    yield opening + '"conversations": ['
    first = True
    for batch in _owner_batches(owner):
        for data in _batch_data(batch):
            yield ("" if first else ",") + "\n" + dumps(data)
            first = False
    yield "\n]" + closing


async def owner_export_stream(*, owner: AbstractBaseUser) -> AsyncIterator[bytes]:
    """``owner_export_chunks`` for an async response: the database work of each chunk in
    a worker thread, so a big export never blocks the event loop."""
    chunks = owner_export_chunks(owner=owner)
    sentinel = object()
    while True:
        chunk = await sync_to_async(next, thread_sensitive=True)(chunks, sentinel)
        if chunk is sentinel:
            return
        yield chunk.encode()


def filename(conversation: Conversation, extension: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", conversation.title or "conversation").strip("-")
    return f"{(slug or 'conversation')[:60].lower()}-{conversation.pk.hex[:8]}.{extension}"


# --------------------------------------------------------------------------- Markdown


def _fence(text: str, info: str = "") -> str:
    """A code fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def _images(parts: Any) -> list[str]:
    lines = []
    for number, part in enumerate(
        [p for p in parts or [] if isinstance(p, dict) and p.get("type") == "image_url"], start=1
    ):
        url = (part.get("image_url") or {}).get("url", "")
        if url.startswith("data:"):
            kind = url[5 : url.find(";")] if ";" in url else "image"
            size = len(url.partition(",")[2]) * 3 // 4
            lines.append(f"*[Image {number}: attached {kind}, {size / 1024:.0f} KB]*")
        else:
            lines.append(f"*[Image {number}: <{url}>]*")
    return lines


def _speaker(
    message: Message, lanes: dict[int, Lane], many: bool, conversation: Conversation
) -> str:
    blind = conversation.blind
    if message.role == Message.Role.USER:
        return "You"
    if message.role == Message.Role.SYSTEM:
        return "System"
    if message.role == Message.Role.TOOL:
        return f"Tool result · `{message.name or 'tool'}` ({message.tool_call_id})"
    lane = lanes.get(message.lane_id) if message.lane_id else None
    who = "Assistant"
    if many and lane is not None and blind:
        # As the page letters it: by the turn's shuffled order, never by the lane.
        who += f" · answer {lane_letter(conversation, message.turn, lane)}"
    elif many and lane is not None:
        who += f" · lane {label(lane.position)}"
    if message.model and not blind:
        who += f" · {message.model}"
    return who


def conversation_markdown(*, conversation: Conversation) -> str:
    """A readable transcript: the shown attempt of each answer, in turn order."""
    lanes = {lane.pk: lane for lane in conversation.lanes.select_related("profile")}
    many = len(lanes) > 1
    blind = conversation.blind
    # The version shown of each edited question, like the page.
    messages = conversation.messages.filter(path_of(conversation).q(), hidden=False).order_by(
        "turn", "id"
    )
    out = [f"# {conversation.title or 'Untitled'}", ""]
    lane_bits = []
    if blind:
        lane_bits.append(f"{len(lanes)} lanes, hidden: blind comparison" if many else "hidden")
    for lane in [] if blind else sorted(lanes.values(), key=lambda lane: lane.position):
        bit = f"lane {label(lane.position)}: " if many else ""
        lane_bits.append(bit + (lane.model or "no model"))
    out += [
        f"*Exported from Playground on {timezone.now():%Y-%m-%d %H:%M} UTC · "
        f"{conversation.get_mode_display().lower()} · {'; '.join(lane_bits)}*",
        "",
    ]
    if conversation.system_prompt:
        out += ["**System prompt**", "", _fence(conversation.system_prompt), ""]
    turn = None
    for message in messages:
        if message.turn != turn:
            turn = message.turn
            out += ["---", "", f"## Turn {turn}", ""]
        out += [f"**{_speaker(message, lanes, many, conversation)}**", ""]
        if message.role == Message.Role.TOOL:
            out += [_fence(message.content), ""]
            continue
        if message.content:
            out += [message.content, ""]
        out += [line + "\n" for line in _images(message.content_parts)]
        for call in message.tool_calls or []:
            function = call.get("function") or {}
            out += [
                f"*Tool call* `{function.get('name', '?')}` ({call.get('id', '')}):",
                "",
                _fence(str(function.get("arguments", "")), "json"),
                "",
            ]
        status = message.display_status
        if status != Message.Status.COMPLETE:
            note = f"*({status}"
            if status == Message.Status.ERROR and message.error:
                note += f": {message.error.get('message', '')}"
            out += [note + ")*", ""]
    return "\n".join(out).rstrip() + "\n"
