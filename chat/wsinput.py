"""What the page sends over the socket, checked: the whole numbers a frame carries
(ids, turns, lanes, repeats) and a send frame's parameters, tools and images."""

from __future__ import annotations

import re
from typing import Any

from chat import composer, turns
from chat.errors import ActionError
from chat.images import images_clean
from chat.models import Conversation, Message


class BadFrame(ValueError):
    """A frame field the page would never send; its message says which, for a toast."""


_WHOLE = re.compile(r"-?[0-9]{1,19}")
BIG_ID = 2**63 - 1  # BigAutoField
BIG_TURN = 2**31 - 1  # PositiveIntegerField


def whole(value: Any, *, low: int, high: int, problem: str, blank: int | None = None) -> Any:
    """A whole number as htmx sends it (a string) or as JSON does (an int), within
    [low, high]; None or "" gives `blank`. Booleans, floats (1e400 is inf), huge numbers
    and anything else raise BadFrame(problem): nothing reaches int() or the database
    that could overflow."""
    if value is None or value == "":
        return blank
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadFrame(problem)
    return value


def repeat_count(value: Any) -> int:
    return whole(
        value, low=1, high=MAX_REPEAT, blank=1,
        problem=f"Repeat must be a whole number from 1 to {MAX_REPEAT}.",
    )  # fmt: skip


def strings(value: Any) -> list[str]:
    """A form value as htmx sends it: absent, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    raise ActionError("Malformed image field.")


MAX_REPEAT = 10
# A page shows at most 6 lanes x 10 choices streaming; more ids than this is not a page.
MAX_SYNC_IDS = 64


def turn_send(
    conversation: Conversation,
    text: str,
    frame: dict[str, Any],
    early: turns.EarlyStart | None = None,
) -> tuple[Message, list[Message]]:
    """A send frame's turn: its images are checked, and the panel's values and the tools
    editor that travel with it are checked and saved as their autosaves would save them
    (a refusal saves nothing), before the turn is."""
    images = images_clean(
        data_urls=strings(frame.get("image_data")), urls=strings(frame.get("image_url"))
    )
    composer.send_apply(conversation, frame)
    return turns.turn_send(conversation=conversation, content=text, images=images, early=early)
