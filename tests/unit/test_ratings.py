"""The leaderboard's Bradley–Terry ratings and their bootstrap intervals
(chat/compare/ratings.py)."""

from __future__ import annotations

import math
import random

import pytest

from chat.compare.ratings import BASE, SCALE, fit, ratings


def _expected_win(a: float, b: float) -> float:
    return 1 / (1 + 10 ** ((b - a) / SCALE))


def test_no_votes_no_ratings() -> None:
    assert fit([]) == {} and ratings([]) == {}


def test_one_win_is_a_finite_step_and_symmetric() -> None:
    got = fit([(("a", "b"), "a")])
    assert BASE < got["a"] < BASE + 400 and got["b"] == pytest.approx(2 * BASE - got["a"])


def test_ties_and_all_bad_leave_equals_equal() -> None:
    got = fit([(("a", "b"), None), (("b", "a"), None)])
    assert got["a"] == pytest.approx(BASE) and got["b"] == pytest.approx(BASE)


def test_a_third_lanes_win_says_nothing_about_the_other_two() -> None:
    got = fit([(("a", "b", "c"), "c")] * 3)
    assert got["a"] == pytest.approx(got["b"]) and got["c"] > got["a"]


def test_the_fit_is_the_likelihood_maximum() -> None:
    """At the fitted ratings each entry's expected score (its meetings' win chances,
    plus the prior's virtual tie against the reference) equals its actual score."""
    ballots = [(("a", "b"), "a")] * 7 + [(("a", "b"), "b")] * 3 + [(("b", "c"), "b")] * 5
    ballots += [(("c", "a"), None)] * 2
    got = fit(ballots)
    for entry in got:
        actual, expected = 0.5, _expected_win(got[entry], BASE)  # the prior
        for entries, winner in ballots:
            if entry not in entries:
                continue
            (other,) = [e for e in entries if e != entry]
            actual += 0.5 if winner is None else float(winner == entry)
            expected += _expected_win(got[entry], got[other])
        assert expected == pytest.approx(actual, abs=1e-6)


def test_known_strengths_are_recovered_and_the_interval_covers_them() -> None:
    """2,000 seeded votes among three entries 150 points apart: the fitted differences
    land within the 95 % intervals' reach of the truth, and the order is right. Seeded:
    the same votes give the same figures on every run."""
    truth = {"x": 1150.0, "y": 1000.0, "z": 850.0}
    rng = random.Random(7)
    ballots = []
    for _ in range(2000):
        a, b = rng.sample(sorted(truth), 2)
        ballots.append(((a, b), a if rng.random() < _expected_win(truth[a], truth[b]) else b))
    got = ratings(ballots)
    assert got["x"].rating > got["y"].rating > got["z"].rating
    for first, second in (("x", "y"), ("y", "z"), ("x", "z")):
        fitted = got[first].rating - got[second].rating
        assert fitted == pytest.approx(truth[first] - truth[second], abs=40)
    for entry in truth:
        r = got[entry]
        assert r.low < r.rating < r.high
        assert 10 < r.high - r.low < 120  # ~±30 points at 1,300 votes each
    # The prior (one virtual tie at 1000) barely pulls 2,000 votes.
    assert sum(r.rating for r in got.values()) / 3 == pytest.approx(BASE, abs=15)


def test_the_interval_narrows_as_votes_add_up() -> None:
    few = [(("a", "b"), "a")] * 6 + [(("a", "b"), "b")] * 4
    many = few * 20
    width = lambda rs: rs["a"].high - rs["a"].low  # noqa: E731
    assert width(ratings(many)) < width(ratings(few)) / 2
    assert math.isfinite(ratings(many)["a"].rating)
