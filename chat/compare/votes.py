"""Blind votes (chat.compare): what stays hidden until the user voted on a turn, casting
a vote, and the leaderboard the votes add up to."""

from __future__ import annotations

import re
from typing import Any

from chat.compare.lanes import label, params_text
from chat.errors import ActionError
from chat.models import Conversation, Lane, Message, Vote
from chat.versions import path_of


def vote_text(vote: Vote | None) -> str:
    if vote is None:
        return ""
    if vote.verdict == Vote.Verdict.WINNER:
        return f"{label(vote.winner_position or 0)} better"
    return "tie" if vote.verdict == Vote.Verdict.TIE else "all bad"


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
