"""Blind votes (chat.compare): what stays hidden until the user voted on a turn, casting
a vote, and the leaderboard the votes add up to."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.core.cache import cache

from chat.compare import ratings
from chat.compare.blind import lane_letter, turn_letters
from chat.compare.lanes import label, params_text
from chat.errors import ActionError
from chat.models import Conversation, Lane, Message, Vote
from chat.versions import path_of


def vote_text(vote: Vote | None) -> str:
    if vote is None:
        return ""
    if vote.verdict == Vote.Verdict.WINNER:
        # The letter the turn showed the winner under (blind: shuffled), as voted.
        shown = next(
            (
                lane.get("label")
                for lane in vote.lanes
                if isinstance(lane, dict) and lane.get("position") == vote.winner_position
            ),
            None,
        )
        return f"{shown or label(vote.winner_position or 0)} better"
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


def redact_identity(
    text: str, lane: Lane | None, model: str = "", answer: Message | None = None
) -> str:
    """Text from upstream (an error message, say) with the lane's model and endpoint
    names replaced, for a turn whose identities are still hidden."""
    if not text:
        return text
    if lane is None:
        who = "this lane"
    elif answer is not None and answer.conversation.blind:
        who = f"answer {lane_letter(answer.conversation, answer.turn, lane)}"
    else:
        who = f"lane {label(lane.position)}"
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
    # Only the lanes that answered this turn were compared (one added since was not).
    letters = turn_letters(conversation, turn, lanes)
    answered = set(answers.values_list("lane_id", flat=True))
    lanes = [lane for lane in lanes if lane.pk in answered]
    if verdict == Vote.Verdict.WINNER and winner not in {lane.position for lane in lanes}:
        raise ActionError("Pick one of the lanes that answered.")
    snapshot = [
        {
            "position": lane.position,
            "label": letters[lane.pk],
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


# Fewer votes than this: no interval (a bootstrap of one or two votes has no spread).
MIN_VOTES_FOR_INTERVAL = 5


def leaderboard(*, owner: Any) -> list[dict[str, Any]]:
    """Per model and settings (profile · model · parameters): a Bradley–Terry rating with
    its 95 % bootstrap interval (chat/compare/ratings.py), the number of votes, wins,
    losses, ties and all-bad from the user's votes, best rated first. One model under
    two settings is two rows: what was compared is what is ranked."""
    table, ballots = leaderboard_votes(owner=owner)
    return leaderboard_rows(table, rated(ballots))


def leaderboard_votes(*, owner: Any) -> tuple[dict[tuple[str, str], dict[str, Any]], list]:
    """The database's part of the leaderboard: each row's counts, and the votes as
    ballots for the ratings."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    ballots: list[ratings.Ballot] = []
    for vote in Vote.objects.filter(owner=owner).order_by("pk"):
        keys: list[tuple[str, str]] = []
        winner_key = None
        for lane in vote.lanes:
            name = f"{lane.get('profile', '')} · {lane.get('model') or 'endpoint default'}"
            settings = params_text(lane.get("params") or {})
            key = (name, settings)
            row = table.setdefault(
                key,
                {
                    "name": name, "settings": settings,
                    "votes": 0, "wins": 0, "losses": 0, "ties": 0, "bad": 0,
                },
            )  # fmt: skip
            row["votes"] += 1
            if key not in keys:
                keys.append(key)
            if vote.verdict == Vote.Verdict.TIE:
                row["ties"] += 1
            elif vote.verdict == Vote.Verdict.ALL_BAD:
                row["bad"] += 1
            elif lane["position"] == vote.winner_position:
                row["wins"] += 1
                winner_key = key
            else:
                row["losses"] += 1
        if len(keys) > 1:
            ballots.append((tuple(keys), winner_key))
    return table, ballots


def rated(ballots: list) -> dict[Any, ratings.Rating]:
    """``ratings.ratings(ballots)``, kept in the cache for the same votes: a few
    thousand votes take seconds to resample, and the page is opened more often than
    a vote is cast."""
    key = "leaderboard:" + hashlib.sha256(repr(ballots).encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = ratings.ratings(ballots)
        cache.set(key, found, timeout=24 * 3600)
    return found


def leaderboard_rows(
    table: dict[tuple[str, str], dict[str, Any]], fitted: dict[Any, ratings.Rating]
) -> list[dict[str, Any]]:
    for key, row in table.items():
        rating = fitted.get(key)
        row["rating"] = rating.rating if rating else None
        interval = rating is not None and row["votes"] >= MIN_VOTES_FOR_INTERVAL
        row["low"] = rating.low if interval else None
        row["high"] = rating.high if interval else None
    return sorted(
        table.values(),
        key=lambda r: (r["rating"] is None, -(r["rating"] or 0), -r["votes"], r["name"]),
    )
