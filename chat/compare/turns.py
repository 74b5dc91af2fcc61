"""A conversation's turns side by side (chat.compare): one row per turn with a cell per
lane, the per-turn summary (latency, length, cost; the clear winner of each marked), and
word diffs between two answers."""

from __future__ import annotations

import difflib
import re
import statistics
from dataclasses import dataclass
from typing import Any

from chat.compare.blind import turn_letters, turn_order
from chat.compare.lanes import label
from chat.compare.votes import vote_text
from chat.models import Conversation, Lane, Message, Vote
from chat.versions import Path


@dataclass
class Cell:
    lane: Lane
    messages: list[Message]
    attempts: list[int]
    shown: int
    letter: str = ""  # the answer's letter in its turn (blind: by shown order)

    @property
    def attempt_index(self) -> int:
        return self.attempts.index(self.shown) + 1 if self.shown in self.attempts else 1

    @property
    def prev_attempt(self) -> int | None:
        i = self.attempt_index - 1
        return self.attempts[i - 1] if i > 0 else None

    @property
    def next_attempt(self) -> int | None:
        i = self.attempt_index - 1
        return self.attempts[i + 1] if i + 1 < len(self.attempts) else None

    @property
    def label(self) -> str:
        return self.letter or label(self.lane.position)


def turn_rows(
    conversation: Conversation,
    lanes: list[Lane],
    history: list[Message],
    votes: dict[int, Vote] | None = None,
    path: Path | None = None,
) -> list[dict[str, Any]]:
    """Turns as rows: the shared user message, then one cell per lane. With the shown
    `path`, an edited question's row carries its versions (`row["versions"]`)."""
    votes = votes or {}
    turns: dict[int, dict[str, Any]] = {}
    for message in history:
        row = turns.setdefault(message.turn, {"turn": message.turn, "user": None, "all": []})
        if message.lane_id is None:
            row["user"] = message
        else:
            row["all"].append(message)
    rows = []
    for number in sorted(turns):
        row = turns[number]
        cells = []
        shown_lanes = turn_order(conversation, number, lanes)
        letters = turn_letters(conversation, number, shown_lanes)
        for lane in shown_lanes:
            mine = [m for m in row["all"] if m.lane_id == lane.pk]
            attempts = sorted({m.attempt for m in mine})
            shown = next((m.attempt for m in mine if not m.hidden), attempts[-1] if attempts else 0)
            kept = [m for m in mine if m.attempt == shown]
            cells.append(Cell(lane, kept, attempts, shown, letters[lane.pk]))
        row["cells"] = cells
        row["versions"] = path.groups.get(number) if path is not None else None
        row["summary"] = (
            summary(shown_lanes, row["all"], votes.get(number), letters) if len(lanes) > 1 else None
        )
        rows.append(row)
    return rows


def _spread(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


# A win by less than this (relative) is noise on a shared machine or network: not marked.
WIN_MARGIN = 0.05


def _clear_win(best: float, runner_up: float, smaller_wins: bool) -> bool:
    if smaller_wins:
        return runner_up > best * (1 + WIN_MARGIN)
    return best > runner_up * (1 + WIN_MARGIN)


def summary(
    lanes: list[Lane],
    answers: list[Message],
    vote: Vote | None = None,
    letters: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Per lane (in the order given, lettered by ``letters`` when given): latency and
    length across its attempts at this turn (repeats), the shown answer's finish and
    tokens; the best value of each row marked (a clear win only: by more than
    WIN_MARGIN)."""
    letters = letters or {}
    columns = [_column(lane, answers, letters.get(lane.pk)) for lane in lanes]
    # A lane added after this turn has no answer in it: it neither holds the turn "open"
    # nor can it win or be voted for.
    answered = [c for c in columns if c["status"]]
    complete = bool(answered) and all(c["status"] != Message.Status.STREAMING for c in answered)
    # Branching from any answer of a turn copies the whole turn, every lane included.
    branch_id = next((c["message_id"] for c in columns if c["message_id"]), None)
    return {
        "columns": columns,
        "best": _best(columns),
        "complete": complete,
        "voted": vote_text(vote),
        "branch_id": branch_id,
    }


def _column(lane: Lane, answers: list[Message], letter: str | None = None) -> dict[str, Any]:
    """One lane's column of the summary."""
    streaming = any(m.lane_id == lane.pk and m.status == Message.Status.STREAMING for m in answers)
    mine = [
        m for m in answers
        if m.lane_id == lane.pk and m.role == Message.Role.ASSISTANT
        and m.status != Message.Status.STREAMING
    ]  # fmt: skip
    done = [m for m in mine if m.status == Message.Status.COMPLETE]
    shown = next((m for m in reversed(mine) if not m.hidden), mine[-1] if mine else None)
    metrics = [m.metrics or {} for m in done]
    return {
        "lane": lane,
        "label": letter or label(lane.position),
        "ttft": _spread([x["ttft_ms"] for x in metrics if x.get("ttft_ms") is not None]),
        "total": _spread([x["total_ms"] for x in metrics if x.get("total_ms") is not None]),
        "speed": _spread([x["tokens_per_s"] for x in metrics if x.get("tokens_per_s")]),
        "estimated": any(x.get("tokens_estimated") for x in metrics),
        "tokens": _spread(
            [
                (m.usage or {}).get("completion_tokens") or x.get("completion_tokens") or 0
                for m, x in zip(done, metrics, strict=True)
            ]
        ),  # fmt: skip
        "cost": _spread([x["cost"] for x in metrics if x.get("cost") is not None]),
        "finish": shown.finish_reason if shown else "",
        "status": Message.Status.STREAMING if streaming else (shown.status if shown else ""),
        "message_id": shown.pk if shown else None,
    }


def _best(columns: list[dict[str, Any]]) -> dict[str, int]:
    """Per row (ttft, total, speed, cost): the column that wins it clearly, if one does."""
    best: dict[str, int] = {}
    for key, smaller_wins in (("ttft", True), ("total", True), ("speed", False), ("cost", True)):
        ranked = sorted(
            ((c[key]["median"], i) for i, c in enumerate(columns) if c[key]),
            reverse=not smaller_wins,
        )
        if len(ranked) > 1 and _clear_win(ranked[0][0], ranked[1][0], smaller_wins):
            best[key] = ranked[0][1]
    return best


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """[(op, text)] with op in equal/delete/insert, on word boundaries."""
    left = re.findall(r"\s+|[^\s]+", a)
    right = re.findall(r"\s+|[^\s]+", b)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, left, right, autojunk=False
    ).get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(left[i1:i2])))
            continue
        if op in ("delete", "replace"):
            out.append(("delete", "".join(left[i1:i2])))
        if op in ("insert", "replace"):
            out.append(("insert", "".join(right[j1:j2])))
    return out
