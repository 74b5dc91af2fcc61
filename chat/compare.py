"""Side-by-side comparison: lanes, sweeps, repeats, per-turn summaries, diffs, blind
votes. A plain chat is a conversation with one lane; everything here also works then."""

from __future__ import annotations

import difflib
import re
import statistics
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from chat.errors import ActionError
from chat.history import sidebar_changed
from chat.models import Conversation, EndpointProfile, Lane, Message, Vote
from chat.params import BY_NAME, clean_value, params_for
from chat.versions import Path, path_of

MAX_LANES = 6
LABELS = "ABCDEF"
SWEEPABLE = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "max_tokens", "seed")


def label(position: int) -> str:
    return LABELS[position] if position < len(LABELS) else str(position + 1)


def _clone(lane: Lane, position: int, **changes: Any) -> Lane:
    return Lane(
        conversation_id=lane.conversation_id,
        position=position,
        profile_id=changes.get("profile_id", lane.profile_id),
        model=changes.get("model", lane.model),
        params=changes.get("params", dict(lane.params)),
        system_prompt=lane.system_prompt,
        tools=lane.tools,
    )


def lane_add(*, conversation: Conversation, source: Lane | None = None) -> Lane:
    lanes = list(conversation.lanes.all())
    if len(lanes) >= MAX_LANES:
        raise ActionError(f"A comparison has at most {MAX_LANES} lanes.")
    source = source or lanes[-1]
    lane = _clone(source, max(lane.position for lane in lanes) + 1)
    lane.save()
    return lane


def lanes_sync_model(*, lane: Lane) -> int:
    """Give every lane of the conversation this lane's endpoint and model (the "sync"
    of that setting group); parameters, prompts and tools stay each lane's own."""
    return (
        Lane.objects.filter(conversation_id=lane.conversation_id)
        .exclude(pk=lane.pk)
        .update(profile_id=lane.profile_id, model=lane.model)
    )


def lane_remove(*, lane: Lane) -> None:
    conversation = lane.conversation
    with transaction.atomic():
        if conversation.lanes.count() <= 1:
            raise ActionError("A conversation keeps at least one lane.")
        if lane.messages.live_streaming().exists():
            raise ActionError("Stop the lane's answer before removing it.")
        lane.delete()  # its answers go with it; the shared turns stay
        _renumber(conversation)


def lane_move(*, lane: Lane, offset: int) -> None:
    with transaction.atomic():
        lanes = list(lane.conversation.lanes.select_for_update().order_by("position"))
        index = next(i for i, item in enumerate(lanes) if item.pk == lane.pk)
        target = index + offset
        if not 0 <= target < len(lanes):
            return
        lanes[index], lanes[target] = lanes[target], lanes[index]
        _renumber(lane.conversation, order=lanes)


def _renumber(conversation: Conversation, order: list[Lane] | None = None) -> None:
    order = order or list(conversation.lanes.order_by("position"))
    # Two passes: positions are unique, so move everything out of the way first.
    for offset, item in enumerate(order):
        Lane.objects.filter(pk=item.pk).update(position=100 + offset)
    for offset, item in enumerate(order):
        Lane.objects.filter(pk=item.pk).update(position=offset)


def sweep_values(name: str, raw: str) -> list[Any]:
    if name not in SWEEPABLE:
        raise ActionError(f"{name} cannot be swept.")
    values = []
    for item in re.split(r"[,\s]+", raw.strip()):
        if item:
            values.append(clean_value(BY_NAME[name], item))
    if len(values) < 2:
        raise ActionError("Give at least two values, separated by commas.")
    return values


def lanes_sweep(
    *, lane: Lane, param: str | None = None, values: list[Any] | None = None,
    models: list[str] | None = None,
) -> list[Lane]:  # fmt: skip
    """Lanes that differ from `lane` only in one parameter, or only in the model: the
    lane itself takes the first value, new lanes the others."""
    conversation = lane.conversation
    variants: list[dict[str, Any]]
    if models:
        variants = [{"model": m} for m in models]
    elif param and values:
        variants = [{"params": {**lane.params, param: v}} for v in values]
    else:
        raise ActionError("Pick a parameter and values, or models.")
    existing = conversation.lanes.count()
    if existing - 1 + len(variants) > MAX_LANES:
        raise ActionError(
            f"That makes {existing - 1 + len(variants)} lanes; a comparison has at most "
            f"{MAX_LANES}."
        )
    with transaction.atomic():
        first, rest = variants[0], variants[1:]
        for key, value in first.items():
            setattr(lane, key, value)
        lane.save()
        top = conversation.lanes.aggregate(m=Max("position"))["m"]
        created = [_clone(lane, top + 1 + i, **variant) for i, variant in enumerate(rest)]
        Lane.objects.bulk_create(created)
    return [lane, *created]


def setup_of(conversation: Conversation) -> list[dict[str, Any]]:
    """What a shareable setup carries: lanes without history or secrets."""
    return [
        {
            "profile": lane.profile.name if lane.profile else "",
            "base_url": lane.profile.base_url if lane.profile else "",
            "model": lane.model,
            "params": lane.params,
            "system_prompt": lane.system_prompt,
        }
        for lane in conversation.lanes.select_related("profile")
    ]


def conversation_from_setup(*, owner: Any, setup: list[dict[str, Any]]) -> Conversation:
    if not isinstance(setup, list) or not 1 <= len(setup) <= MAX_LANES:
        raise ActionError(f"A setup has 1 to {MAX_LANES} lanes.")
    profiles = list(EndpointProfile.objects.filter(owner=owner))
    if not profiles:
        raise ActionError("Add an endpoint first.")
    fallback = next((p for p in profiles if p.is_demo), profiles[0])
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=owner, title="Comparison")
        sidebar_changed(owner_id=conversation.owner_id)
        for position, item in enumerate(setup):
            if not isinstance(item, dict):
                raise ActionError(f"Lane {position + 1} is not an object.")
            profile = next(
                (p for p in profiles if p.name == item.get("profile")),
                next((p for p in profiles if p.base_url == item.get("base_url")), fallback),
            )
            params = item.get("params") or {}
            if not isinstance(params, dict):
                raise ActionError(f"Lane {position + 1}: params must be an object.")
            from chat.params import check_params

            cleaned, errors = check_params(params)
            if errors:
                raise ActionError(f"Lane {position + 1}: {next(iter(errors.values()))}")
            prompt = item.get("system_prompt")
            Lane.objects.create(
                conversation=conversation,
                position=position,
                profile=profile,
                model=str(item.get("model") or profile.default_model)[:200],
                params=cleaned,
                system_prompt=prompt if isinstance(prompt, str) else None,
            )
    return conversation


# --- turns ------------------------------------------------------------------------------
@dataclass
class Cell:
    lane: Lane
    messages: list[Message]
    attempts: list[int]
    shown: int

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
        return label(self.lane.position)


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
        for lane in lanes:
            mine = [m for m in row["all"] if m.lane_id == lane.pk]
            attempts = sorted({m.attempt for m in mine})
            shown = next((m.attempt for m in mine if not m.hidden), attempts[-1] if attempts else 0)
            cells.append(Cell(lane, [m for m in mine if m.attempt == shown], attempts, shown))
        row["cells"] = cells
        row["versions"] = path.groups.get(number) if path is not None else None
        row["summary"] = summary(lanes, row["all"], votes.get(number)) if len(lanes) > 1 else None
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


def _chip_value(param: Any, value: Any) -> str:
    if param.kind == "bool":
        return "on" if value else "off"
    if param.kind == "stops":
        return f"×{len(value)}" if isinstance(value, list) else "set"
    if param.kind in ("json", "json_schema", "logit_bias"):
        return "set"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "…"


def params_text(params: dict[str, Any]) -> str:
    """A lane's parameters in a few words ("temp 0.2 · max 256"), in the table's order."""
    return " · ".join(
        f"{p.chip} {_chip_value(p, params[p.name])}"
        for p in BY_NAME.values()
        if params.get(p.name) is not None
    )


def lane_chips(lane: Lane, lanes: list[Lane]) -> list[dict[str, Any]]:
    """A lane's parameters at a glance: each one it sets, and each one another lane sets
    that it leaves to the endpoint ("default"); those that differ between lanes marked."""
    others = [other for other in lanes if other.pk != lane.pk]
    chips = []
    for param in params_for(lane.conversation.mode):
        mine = lane.params.get(param.name)
        if mine is None and not any(o.params.get(param.name) is not None for o in others):
            continue
        chips.append(
            {
                "label": param.chip,
                "value": "default" if mine is None else _chip_value(param, mine),
                "title": f"{param.label}: {'not sent' if mine is None else mine}",
                "differs": any(o.params.get(param.name) != mine for o in others),
            }
        )
    return chips


# A win by less than this (relative) is noise on a shared machine or network: not marked.
WIN_MARGIN = 0.05


def _clear_win(best: float, runner_up: float, smaller_wins: bool) -> bool:
    if smaller_wins:
        return runner_up > best * (1 + WIN_MARGIN)
    return best > runner_up * (1 + WIN_MARGIN)


def vote_text(vote: Vote | None) -> str:
    if vote is None:
        return ""
    if vote.verdict == Vote.Verdict.WINNER:
        return f"{label(vote.winner_position or 0)} better"
    return "tie" if vote.verdict == Vote.Verdict.TIE else "all bad"


def summary(lanes: list[Lane], answers: list[Message], vote: Vote | None = None) -> dict[str, Any]:
    """Per lane: latency and length across its attempts at this turn (repeats), the
    shown answer's finish and tokens; the best value of each row marked (a clear win
    only: by more than WIN_MARGIN)."""
    columns = []
    for lane in lanes:
        streaming = any(
            m.lane_id == lane.pk and m.status == Message.Status.STREAMING for m in answers
        )
        mine = [
            m for m in answers
            if m.lane_id == lane.pk and m.role == Message.Role.ASSISTANT
            and m.status != Message.Status.STREAMING
        ]  # fmt: skip
        done = [m for m in mine if m.status == Message.Status.COMPLETE]
        shown = next((m for m in reversed(mine) if not m.hidden), mine[-1] if mine else None)
        metrics = [m.metrics or {} for m in done]
        columns.append(
            {
                "lane": lane,
                "label": label(lane.position),
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
                "status": Message.Status.STREAMING
                if streaming
                else (shown.status if shown else ""),
                "message_id": shown.pk if shown else None,
            }
        )
    # A lane added after this turn has no answer in it: it neither holds the turn "open"
    # nor can it win or be voted for.
    answered = [c for c in columns if c["status"]]
    complete = bool(answered) and all(c["status"] != Message.Status.STREAMING for c in answered)
    best: dict[str, int] = {}
    for key, smaller_wins in (("ttft", True), ("total", True), ("speed", False), ("cost", True)):
        ranked = sorted(
            ((c[key]["median"], i) for i, c in enumerate(columns) if c[key]),
            reverse=not smaller_wins,
        )
        if len(ranked) > 1 and _clear_win(ranked[0][0], ranked[1][0], smaller_wins):
            best[key] = ranked[0][1]
    # Branching from any answer of a turn copies the whole turn, every lane included.
    branch_id = next((c["message_id"] for c in columns if c["message_id"]), None)
    return {
        "columns": columns,
        "best": best,
        "complete": complete,
        "voted": vote_text(vote),
        "branch_id": branch_id,
    }


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


# --- blind votes --------------------------------------------------------------------------
def identity_hidden(
    conversation: Conversation, turn: int | None = None, voted_turns: Any = None
) -> bool:
    """Blind mode: which endpoint and model a lane is stays out of everything the user
    gets (pages, partials, frames, inspector, code) until they voted on that turn. With
    no turn (lane heads, the next request) it is hidden for as long as Blind is on.
    `voted_turns` saves a query per message on pages that already know the votes."""
    if not conversation.blind:
        return False
    if turn is None:
        return True
    if not isinstance(voted_turns, set | frozenset | list | tuple):
        return not conversation.votes.filter(turn=turn).exists()
    return turn not in voted_turns


def redact_identity(text: str, lane: Lane | None, model: str = "") -> str:
    """Text from upstream (an error message, say) with the lane's model and endpoint
    names replaced, for a turn whose identities are still hidden."""
    if not text:
        return text
    who = f"lane {label(lane.position)}" if lane is not None else "this lane"
    names = {model, lane.model if lane else ""}
    if lane is not None and lane.profile_id:
        names.add(lane.profile.name)
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = re.sub(re.escape(name), f"[{who}]", text, flags=re.IGNORECASE)
    return text


def vote_cast(
    *, conversation: Conversation, turn: int, verdict: str, winner: int | None = None
) -> Vote:
    lanes = list(conversation.lanes.select_related("profile"))
    if len(lanes) < 2:
        raise ActionError("Votes need at least two lanes.")
    if verdict not in Vote.Verdict.values:
        raise ActionError("Unknown verdict.")
    if verdict == Vote.Verdict.WINNER and winner not in {lane.position for lane in lanes}:
        raise ActionError("Pick one of the lanes.")
    answers = Message.objects.filter(
        conversation=conversation,
        turn=turn,
        branch=path_of(conversation).branch_at(turn),
        role=Message.Role.ASSISTANT,
        hidden=False,
    )
    if not answers.exists():
        raise ActionError("There is nothing to vote on in that turn.")
    if answers.live_streaming().exists():
        raise ActionError("Wait for every lane to finish before voting.")
    snapshot = [
        {
            "position": lane.position,
            "label": label(lane.position),
            "profile": lane.profile.name if lane.profile else "",
            "model": lane.model,
            "params": lane.params,
        }
        for lane in lanes
    ]
    vote, _ = Vote.objects.update_or_create(
        conversation=conversation,
        turn=turn,
        defaults={
            "owner": conversation.owner,
            "verdict": verdict,
            "winner_position": winner if verdict == Vote.Verdict.WINNER else None,
            "lanes": snapshot,
        },
    )
    return vote


def leaderboard(*, owner: Any) -> list[dict[str, Any]]:
    """Per model and settings (profile · model · parameters): wins, losses, ties and
    all-bad from the user's votes. One model under two settings is two rows: what was
    compared is what is ranked."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for vote in Vote.objects.filter(owner=owner):
        for lane in vote.lanes:
            name = f"{lane.get('profile', '')} · {lane.get('model') or 'endpoint default'}"
            settings = params_text(lane.get("params") or {})
            row = table.setdefault(
                (name, settings),
                {
                    "name": name, "settings": settings,
                    "votes": 0, "wins": 0, "losses": 0, "ties": 0, "bad": 0,
                },
            )  # fmt: skip
            row["votes"] += 1
            if vote.verdict == Vote.Verdict.TIE:
                row["ties"] += 1
            elif vote.verdict == Vote.Verdict.ALL_BAD:
                row["bad"] += 1
            elif lane["position"] == vote.winner_position:
                row["wins"] += 1
            else:
                row["losses"] += 1
    for row in table.values():
        decided = row["wins"] + row["losses"] + row["ties"]
        row["score"] = (row["wins"] + 0.5 * row["ties"]) / decided if decided else 0.0
    return sorted(table.values(), key=lambda r: (-r["score"], -r["votes"], r["name"]))
