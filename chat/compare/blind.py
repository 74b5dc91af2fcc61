"""The order a blind turn shows its answers in (chat.compare).

Blind, each turn shows its lanes' answers shuffled, lettered A, B, C… in the order shown:
whoever set the lanes up cannot tell which answer is which lane. The order is seeded
(the server's secret, the conversation and the turn: any process computes the same one,
so two requests racing to store it store the same thing) and stored on the conversation
(``blind_orders``), so a reload, a lane added or removed later, or another worker shows
the same order. Not blind, a turn shows its lanes in their order, lettered by position.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from chat.compare.lanes import label
from chat.models import Conversation, Lane


def _seeded(
    conversation: Conversation, turn: int, lane_ids: list[int], salt: object = ""
) -> list[int]:
    key = settings.SECRET_KEY.encode()
    seed = f"blind:{conversation.pk}:{turn}:{salt}".encode()
    digest = hmac.new(key, seed, hashlib.sha256).digest()
    shuffled = sorted(lane_ids)
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(shuffled)
    return shuffled


def _orders(conversation: Conversation) -> dict[str, list[int]]:
    orders = conversation.blind_orders
    return orders if isinstance(orders, dict) else {}


def turn_order(conversation: Conversation, turn: int, lanes: Sequence[Lane]) -> list[Lane]:
    """``lanes`` in the order ``turn`` shows them: shuffled when the conversation is
    blind, as stored when the turn started (``shuffle_turn``); lanes the stored order
    does not know (added since) last. A turn from before Blind was on has no stored
    order: it gets the seeded one, computed again on each look (nothing is written
    while a page is only being shown)."""
    lanes = sorted(lanes, key=lambda lane: lane.position)
    if not conversation.blind or len(lanes) < 2:
        return lanes
    stored = _orders(conversation).get(str(turn))
    if not isinstance(stored, list):
        stored = _seeded(conversation, turn, [lane.pk for lane in lanes])
    rank = {pk: k for k, pk in enumerate(stored)}
    return sorted(lanes, key=lambda lane: (rank.get(lane.pk, len(rank)), lane.position))


def shuffle_turn(
    conversation: Conversation, turn: int, lanes: Sequence[Lane], salt: object
) -> None:
    """A new question at ``turn`` (a first one, an edit, one sent again after a delete):
    its answers' order, drawn afresh (``salt``: the question's id) and stored, replacing
    any order an earlier question at that turn had."""
    if conversation.blind and len(lanes) > 1:
        _store(conversation, turn, _seeded(conversation, turn, [lane.pk for lane in lanes], salt))


def _store(conversation: Conversation, turn: int, order: list[int]) -> None:
    orders = dict(_orders(conversation))
    orders[str(turn)] = order
    conversation.blind_orders = orders
    if conversation.pk is None:
        return
    # Only this field, and without touching updated_at. Another turn's order stored
    # meanwhile by another request is kept (read back, merged).
    fresh = Conversation.objects.filter(pk=conversation.pk).values_list("blind_orders", flat=True)
    current = next(iter(fresh), None)
    merged = {**(current if isinstance(current, dict) else {}), str(turn): order}
    Conversation.objects.filter(pk=conversation.pk).update(blind_orders=merged)


def turn_letters(conversation: Conversation, turn: int, lanes: Sequence[Lane]) -> dict[int, str]:
    """Each lane's letter in ``turn`` (lane pk → "A"…): by shown order."""
    if not conversation.blind:
        return {lane.pk: label(lane.position) for lane in lanes}
    return {lane.pk: label(k) for k, lane in enumerate(turn_order(conversation, turn, lanes))}


def lane_letter(conversation: Conversation, turn: int, lane: Lane | None) -> str:
    """One answer's letter in its turn (cached on the conversation for a page's worth
    of answers)."""
    if lane is None:
        return ""
    if not conversation.blind:
        return label(lane.position)
    cache: dict[int, dict[int, str]] = conversation.__dict__.setdefault("_blind_letters", {})
    if turn not in cache:
        cache[turn] = turn_letters(conversation, turn, list(conversation.lanes.all()))
    return cache[turn].get(lane.pk, "")


def lane_name(position: int, blind: Any = False) -> str:
    """A lane as its setup (lane heads, panel, tools, sweep) names it: a letter, or when
    blind a number, so that it is not mistaken for an answer's letter, which is shuffled."""
    return str(position + 1) if blind else label(position)


def position_of(conversation: Conversation, turn: int, letter: str) -> int | None:
    """The lane position behind the letter a turn shows (a vote names the letter)."""
    lanes = list(conversation.lanes.all())
    letters = turn_letters(conversation, turn, lanes)
    return next((lane.position for lane in lanes if letters[lane.pk] == letter), None)
