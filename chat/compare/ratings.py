"""Ratings from blind votes (chat.compare): a Bradley–Terry model on an Elo scale, with
95 % bootstrap confidence intervals.

Each vote compares every pair of the turn's lanes: the winner beats each other lane; a
tie, or *all bad*, is half a win each way (as Chatbot Arena counts "both bad"). The
strengths are the likelihood's maximum (Newton's method) with one virtual tie per entry
against a fixed reference of strength 1: an entry that never lost still gets a finite
rating, and one vote moves a rating by tens of points, not to infinity. Ratings are
``1000 + 400·log10(strength)``, so 100 points apart means the higher one is expected to
win 64 % of their meetings. The interval re-fits resamples of the votes (drawn with
replacement, seeded: the same votes give the same page) and takes the 2.5th and 97.5th
percentiles of each entry's rating over the resamples it appears in.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

# One vote: the entries compared (distinct), and the winner among them (None: a tie).
Ballot = tuple[tuple[Hashable, ...], Hashable | None]

BASE = 1000.0
SCALE = 400.0
PRIOR_TIES = 1.0  # virtual ties against the reference, per entry
RESAMPLES = 200
MIN_RESAMPLES = 50
WORK = 6_000_000  # ~ the operations of a table's resamples (see resamples_for)
SEED = 20261207


@dataclass
class Rating:
    rating: float
    low: float
    high: float


class _Votes:
    """The votes as the fit needs them: the entries by index, and each kind of vote
    (identical votes counted once: thousands of votes among a few entries are a few
    dozen kinds, and a resample only redraws how many of each) as its meetings, each
    ``(i, j, i's score, j's score)``."""

    def __init__(self, ballots: Sequence[Ballot]) -> None:
        self.entries = sorted({e for entries, _ in ballots for e in entries}, key=repr)
        index = {e: k for k, e in enumerate(self.entries)}
        counts: Counter = Counter((tuple(entries), winner) for entries, winner in ballots)
        self.kinds: list[list[tuple[int, int, float, float]]] = []
        self.counts: list[int] = []
        for (entries, winner), count in sorted(counts.items(), key=repr):
            meetings = []
            for a_index, a in enumerate(entries):
                for b in entries[a_index + 1 :]:
                    # Two losers to a third lane: the vote says nothing about this pair.
                    if a == b or winner not in (None, a, b):
                        continue
                    score = 0.5 if winner is None else float(winner == a)
                    meetings.append((index[a], index[b], score, 1.0 - score))
            self.kinds.append(meetings)
            self.counts.append(count)

    def tally(self, counts: Sequence[int]) -> tuple[list[list[float]], list[float]]:
        """Meetings between each pair, and each entry's score, for these counts."""
        n = len(self.entries)
        games = [[0.0] * n for _ in range(n)]
        scored = [0.0] * n
        for meetings, count in zip(self.kinds, counts, strict=True):
            if not count:
                continue
            for i, j, score_i, score_j in meetings:
                games[i][j] += count
                games[j][i] += count
                scored[i] += count * score_i
                scored[j] += count * score_j
        return games, scored


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """``matrix⁻¹ · vector`` for a symmetric positive definite matrix (Cholesky)."""
    n = len(vector)
    lower: list[list[float]] = []
    for i in range(n):
        row_i: list[float] = []
        for j in range(i):
            row_j = lower[j]
            dot = sum(a * b for a, b in zip(row_i, row_j, strict=False))
            row_i.append((matrix[i][j] - dot) / row_j[j])
        row_i.append(math.sqrt(matrix[i][i] - sum(a * a for a in row_i)))
        lower.append(row_i)
    y: list[float] = []
    for i in range(n):
        y.append((vector[i] - sum(a * b for a, b in zip(lower[i], y, strict=False))) / lower[i][i])
    x = [0.0] * n
    for i in reversed(range(n)):
        dot = sum(lower[k][i] * x[k] for k in range(i + 1, n))
        x[i] = (y[i] - dot) / lower[i][i]
    return x


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def fit(ballots: Sequence[Ballot]) -> dict[Hashable, float]:
    """Each entry's rating (Elo scale) under the Bradley–Terry model."""
    votes = _Votes(ballots)
    if not votes.entries:
        return {}
    theta = _newton(*votes.tally(votes.counts), [0.0] * len(votes.entries), 1e-10)
    return {e: _elo(t) for e, t in zip(votes.entries, theta, strict=True)}


def _elo(theta: float) -> float:
    return BASE + SCALE * theta / math.log(10)


def _newton(
    games: list[list[float]], scored: list[float], theta: list[float], tolerance: float
) -> list[float]:
    """The log-strengths at the maximum of the likelihood with the prior, by Newton's
    method from ``theta`` (a few steps; from the whole votes' fit, a resample's takes two
    or three)."""
    n = len(theta)
    scored = [s + PRIOR_TIES / 2 for s in scored]
    meetings = [[(j, g) for j, g in enumerate(row) if g > 0] for row in games]
    for _ in range(100):
        # Gradient and (minus) Hessian of the log-likelihood with the prior.
        gradient = scored[:]
        hessian = [[0.0] * n for _ in range(n)]
        for i, theta_i in enumerate(theta):
            p = _sigmoid(theta_i)
            gradient[i] -= PRIOR_TIES * p
            # (+ a ridge: exactly 0 curvature once a rating runs off to ±15,000)
            hessian[i][i] += PRIOR_TIES * p * (1 - p) + 1e-9
            row = hessian[i]
            for j, g in meetings[i]:
                p = _sigmoid(theta_i - theta[j])
                gradient[i] -= g * p
                row[i] += g * p * (1 - p)
                row[j] -= g * p * (1 - p)
        step = _solve(hessian, gradient)
        theta = [t + d for t, d in zip(theta, step, strict=True)]
        if max(abs(d) for d in step) < tolerance:
            break
    return theta


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def resamples_for(entries: int, meetings: int) -> int:
    """How many resamples: RESAMPLES, fewer when a fit is costly (a resample's tally
    grows with the votes' meetings, its linear solves with the cube of the entries),
    never under MIN_RESAMPLES."""
    cost = meetings + 3 * entries**3
    return max(MIN_RESAMPLES, min(RESAMPLES, int(WORK / max(1, cost))))


def ratings(ballots: Sequence[Ballot], resamples: int | None = None) -> dict[Hashable, Rating]:
    """Each entry's rating with its 95 % bootstrap interval."""
    votes = _Votes(ballots)
    n = len(votes.entries)
    if not n:
        return {}
    point = _newton(*votes.tally(votes.counts), [0.0] * n, 1e-10)
    if resamples is None:
        resamples = resamples_for(n, sum(len(kind) for kind in votes.kinds))
    rng = random.Random(SEED)
    draws: list[list[float]] = [[] for _ in range(n)]
    total = len(ballots)
    if total > 1:
        kinds = range(len(votes.kinds))
        for _ in range(resamples):
            # As many votes as there are, drawn with replacement, counted by kind.
            drawn = Counter(rng.choices(kinds, weights=votes.counts, k=total))
            games, scored = votes.tally([drawn.get(k, 0) for k in kinds])
            present = [any(row) for row in games]
            theta = _newton(games, scored, point, 1e-6)
            for i, value in enumerate(theta):
                if present[i]:
                    draws[i].append(_elo(value))
    out = {}
    for i, entry in enumerate(votes.entries):
        value = _elo(point[i])
        values = draws[i] or [value]
        low, high = _percentile(values, 0.025), _percentile(values, 0.975)
        out[entry] = Rating(value, min(low, value), max(high, value))
    return out
