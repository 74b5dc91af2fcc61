"""Side-by-side comparison: lanes, sweeps, repeats, per-turn summaries, diffs, blind
votes. A plain chat is a conversation with one lane; everything here also works then.

The package: lanes.py (lanes, sweeps, setups, parameter chips), turns.py (turn rows,
the per-turn summary, word diffs) and votes.py (blind mode, votes, the leaderboard), blind.py (the
shuffled order of a blind turn's answers).
"""

from __future__ import annotations

from chat.compare.blind import lane_letter, lane_name, position_of, turn_letters, turn_order
from chat.compare.lanes import (
    LABELS,
    MAX_LANES,
    SWEEPABLE,
    conversation_from_setup,
    label,
    lane_add,
    lane_chips,
    lane_move,
    lane_remove,
    lanes_sweep,
    lanes_sync_model,
    params_text,
    setup_of,
    sweep_values,
)
from chat.compare.turns import WIN_MARGIN, Cell, summary, turn_rows, word_diff
from chat.compare.votes import (
    identity_hidden,
    leaderboard,
    redact_identity,
    vote_cast,
    vote_text,
)

__all__ = [
    "LABELS",
    "MAX_LANES",
    "SWEEPABLE",
    "WIN_MARGIN",
    "Cell",
    "conversation_from_setup",
    "identity_hidden",
    "label",
    "lane_letter",
    "lane_name",
    "lane_add",
    "lane_chips",
    "lane_move",
    "lane_remove",
    "lanes_sweep",
    "lanes_sync_model",
    "leaderboard",
    "params_text",
    "position_of",
    "redact_identity",
    "setup_of",
    "summary",
    "sweep_values",
    "turn_letters",
    "turn_order",
    "turn_rows",
    "vote_cast",
    "vote_text",
    "word_diff",
]
