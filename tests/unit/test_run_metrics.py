"""A run's metrics from fixed timestamps: the arithmetic behind the TTFT, tokens/s and
cost shown per answer, without a clock (the integration tests only check bounds that a
loaded machine cannot break)."""

from __future__ import annotations

from functools import partial

import pytest

from chat import upstream
from chat.runs.answer import Answer
from chat.runs.answer import metrics as answer_metrics


def a_run(*, first=100.15, usage=None, text="", reasoning="", retries=0, prices=(None, None)):
    """An answer whose run started at 100.0 (monotonic seconds) and whose first token came
    at ``first``, made by its events; ``metrics`` of it with the run's retries and prices."""
    answer = Answer()
    if first is not None:
        answer.add(upstream.TextDelta(text=text), at=first)
        answer.add(upstream.ReasoningDelta(text=reasoning), at=first)
    answer.usage = usage
    return partial(answer_metrics, answer, started=100.0, retries=retries, prices=prices)


def metrics(run, ended):
    return run(ended=ended)


def test_the_fakes_demo_pace_gives_its_ttft_and_tokens_per_second():
    # 150 ms to the first token, then 24 tokens whose last came 400 ms later.
    run = a_run(usage={"prompt_tokens": 10, "completion_tokens": 24})
    assert metrics(run, ended=100.55) == {
        "total_ms": 550, "ttft_ms": 150, "tokens_per_s": 60.0, "tokens_estimated": False,
        "completion_tokens": 24,
    }  # fmt: skip


def test_without_usage_tokens_are_estimated_from_all_the_text():
    # 30 + 10 characters, ~4 a token: 10 tokens in 2 s.
    run = a_run(first=101.0, text="x" * 30, reasoning="y" * 10)
    got = metrics(run, ended=103.0)
    assert got["ttft_ms"] == 1000 and got["total_ms"] == 3000
    assert got["completion_tokens"] == 10
    assert got["tokens_per_s"] == 5.0 and got["tokens_estimated"] is True


def test_no_first_token_gives_only_the_total():
    assert metrics(a_run(first=None), ended=100.25) == {"total_ms": 250}


def test_an_answer_in_one_instant_has_no_rate():
    # One chunk with everything: no time to divide by, so no tokens/s at all.
    got = metrics(a_run(first=100.5, usage={"completion_tokens": 7}), ended=100.5)
    assert "tokens_per_s" not in got and got["completion_tokens"] == 7


def test_retries_and_cost_per_million_tokens():
    run = a_run(usage={"prompt_tokens": 1000, "completion_tokens": 500}, retries=2,
                prices=(2.0, 8.0))  # fmt: skip
    got = metrics(run, ended=101.15)
    assert got["retries"] == 2
    assert got["cost"] == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1_000_000)
    assert got["tokens_per_s"] == 500.0
