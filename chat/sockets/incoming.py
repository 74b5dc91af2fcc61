"""What the page sends over the socket, checked: the whole numbers a frame carries
(ids, turns, lanes, repeats). A send's parameters, tools and images are checked by the
send itself (chat.actions.send)."""

from __future__ import annotations

import re
from typing import Any


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


MAX_REPEAT = 10
# A page shows at most 6 lanes x 10 choices streaming; more ids than this is not a page.
MAX_SYNC_IDS = 64
