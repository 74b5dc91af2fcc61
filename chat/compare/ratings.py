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
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

# One vote: the entries compared (distinct), and the winner among them (None: a tie).
Ballot = tuple[tuple[Hashable, ...], Hashable | None]

BASE = 1000.0
SCALE = 400.0
PRIOR_TIES = 1.0  # virtual ties against the reference, per entry
RESAMPLES = 200
SEED = 20261207


@dataclass
class Rating:
    rating: float
    low: float
    high: float


def _pairs(ballots: Sequence[Ballot]) -> tuple[dict, dict]:
    """wins[i][j]: i's wins over j (a tie counts ½ each way); games[i][j]: meetings."""
    wins: dict = defaultdict(lambda: defaultdict(float))
    games: dict = defaultdict(lambda: defaultdict(float))
    for entries, winner in ballots:
        for a_index, a in enumerate(entries):
            for b in entries[a_index + 1 :]:
                # Two losers to a third lane: the vote says nothing about this pair.
                if a == b or winner not in (None, a, b):
                    continue
                games[a][b] += 1
                games[b][a] += 1
                if winner is None:
                    wins[a][b] += 0.5
                    wins[b][a] += 0.5
                else:
                    loser = b if winner == a else a
                    wins[winner][loser] += 1
    return wins, games


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """``matrix⁻¹ · vector`` for a symmetric positive definite matrix (Cholesky)."""
    n = len(vector)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            total = matrix[i][j] - sum(lower[i][k] * lower[j][k] for k in range(j))
            lower[i][j] = math.sqrt(total) if i == j else total / lower[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (vector[i] - sum(lower[i][k] * y[k] for k in range(i))) / lower[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(lower[k][i] * x[k] for k in range(i + 1, n))) / lower[i][i]
    return x


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def fit(
    ballots: Sequence[Ballot],
    *,
    start: dict[Hashable, float] | None = None,
    tolerance: float = 1e-10,
) -> dict[Hashable, float]:
    """Each entry's rating (Elo scale) under the Bradley–Terry model: the maximum of
    its likelihood with the prior, by Newton's method on the log-strengths (a few steps;
    ``start``, ratings to begin from, makes a resample's fit two or three)."""
    wins, games = _pairs(ballots)
    entries = sorted({e for entries, _ in ballots for e in entries}, key=repr)
    if not entries:
        return {}
    index = {e: k for k, e in enumerate(entries)}
    start = start or {}
    theta = [(start.get(e, BASE) - BASE) / SCALE * math.log(10) for e in entries]
    scored = [sum(wins[e].values()) + PRIOR_TIES / 2 for e in entries]
    meetings = [[(index[o], n) for o, n in games[e].items() if n > 0] for e in entries]
    for _ in range(100):
        # Gradient and (minus) Hessian of the log-likelihood with the prior.
        gradient = scored[:]
        hessian = [[0.0] * len(entries) for _ in entries]
        for i, theta_i in enumerate(theta):
            p = _sigmoid(theta_i)
            gradient[i] -= PRIOR_TIES * p
            hessian[i][i] += PRIOR_TIES * p * (1 - p)
            for j, n in meetings[i]:
                p = _sigmoid(theta_i - theta[j])
                gradient[i] -= n * p
                hessian[i][i] += n * p * (1 - p)
                hessian[i][j] -= n * p * (1 - p)
        step = _solve(hessian, gradient)
        theta = [t + d for t, d in zip(theta, step, strict=True)]
        if max(abs(d) for d in step) < tolerance:
            break
    return {e: BASE + SCALE * t / math.log(10) for e, t in zip(entries, theta, strict=True)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def ratings(ballots: Sequence[Ballot], resamples: int = RESAMPLES) -> dict[Hashable, Rating]:
    """Each entry's rating with its 95 % bootstrap interval."""
    point = fit(ballots)
    rng = random.Random(SEED)
    draws: dict[Hashable, list[float]] = defaultdict(list)
    if len(ballots) > 1:
        for _ in range(resamples):
            sample = [ballots[rng.randrange(len(ballots))] for _ in ballots]
            for entry, value in fit(sample, start=point, tolerance=1e-6).items():
                draws[entry].append(value)
    out = {}
    for entry, value in point.items():
        values = draws.get(entry) or [value]
        low, high = _percentile(values, 0.025), _percentile(values, 0.975)
        out[entry] = Rating(value, min(low, value), max(high, value))
    return out
