"""The side-by-side benchmark's bookkeeping on made-up numbers: the rotation of the paths,
the turns per client, the statistics and ratios of a level, the table, the SSE reading and
the command's options (tests/bench/sidebyside_report.py, measure_sidebyside, sidebyside)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tests.bench.measure_sidebyside import _content
from tests.bench.sidebyside import main as sidebyside
from tests.bench.sidebyside import options_from, parser
from tests.bench.sidebyside_report import (
    PATHS,
    PathRaw,
    SideBySide,
    level_stats,
    report,
    rotation,
    turns_per_client,
)


def test_each_round_starts_at_the_next_path_and_runs_all_four():
    assert rotation(0) == ["direct", "nginx", "litellm", "app"]
    assert rotation(1) == ["nginx", "litellm", "app", "direct"]
    assert rotation(3) == ["app", "direct", "nginx", "litellm"]
    assert rotation(5) == rotation(1)
    # Over four rounds every path takes every position once.
    for position in range(4):
        assert Counter(rotation(k)[position] for k in range(4)) == Counter(PATHS)


@pytest.mark.parametrize(
    ("c", "rounds", "minimum", "turns"),
    [(1, 3, 10, 4), (1, 1, 10, 10), (10, 3, 10, 1), (3, 1, 10, 4), (200, 3, 10, 1), (1, 0, 5, 5)],
)
def test_turns_per_client_reach_the_minimum_over_all_rounds(c, rounds, minimum, turns):
    assert turns_per_client(c, rounds, minimum) == turns
    assert c * turns * max(rounds, 1) >= minimum


def _raw(ttft_ms: list[float], total_ms: list[float], **kw) -> PathRaw:
    return PathRaw(ttft=[t / 1000 for t in ttft_ms], total=[t / 1000 for t in total_ms], **kw)


def _level() -> dict[str, PathRaw]:
    hundred = list(range(1, 101))  # 1..100 ms: median 50, p99 99
    return {
        "direct": _raw(hundred, [2000 + t for t in hundred], fake_cpu_s=1.0, wall_s=2.0),
        "nginx": _raw([t + 1 for t in hundred], [2001 + t for t in hundred], relay_cpu_s=0.2),
        "litellm": _raw(
            [t + 40 for t in hundred],
            [2100 + t for t in hundred],
            relay_cpu_s=7.0,
            client_cpu_s=3.5,
            wall_s=7.0,
            timeouts=2,
        ),
        "app": _raw(
            [t + 10 for t in hundred], [2030 + t for t in hundred], relay_cpu_s=3.0, wall_s=4.0
        ),
    }


def test_added_latency_is_the_paths_percentile_minus_directs():
    level = level_stats(50, 3, 1, _level())
    direct, nginx, litellm, app = (level.paths[p] for p in PATHS)
    assert direct.ttft_ms == {"median": 50.0, "p99": 99.0}
    assert direct.total_ms["median"] == 2050.0
    assert nginx.added_ttft_ms == {"median": 1.0, "p99": 1.0}
    assert app.added_ttft_ms == {"median": 10.0, "p99": 10.0}
    assert litellm.added_ttft_ms == {"median": 40.0, "p99": 40.0}
    assert app.added_total_ms["median"] == 30.0 and litellm.added_total_ms["median"] == 100.0
    # CPU per answer of the relaying process; direct has none.
    assert app.cpu_ms_per_answer == pytest.approx(30.0)
    assert litellm.cpu_ms_per_answer == pytest.approx(70.0)
    assert math.isnan(direct.cpu_ms_per_answer)
    # CPU while the path ran, in % of one core: the relay's, the fake's, the clients'.
    assert app.cpu_pct == pytest.approx(75.0) and litellm.cpu_pct == pytest.approx(100.0)
    assert math.isnan(direct.cpu_pct) and direct.fake_cpu_pct == pytest.approx(50.0)
    assert litellm.client_cpu_pct == pytest.approx(50.0)
    assert math.isnan(nginx.cpu_pct)  # no wall time recorded
    assert litellm.timeouts == 2 and litellm.answers == 100
    # The app's added TTFT over the peers'.
    assert level.ratio("litellm", "median") == pytest.approx(0.25)
    assert level.ratio("nginx", "p99") == pytest.approx(10.0)


def test_a_ratio_over_nothing_added_is_not_a_number():
    raw = _level()
    raw["nginx"] = _raw([t - 1 for t in range(1, 101)], [2000.0])  # faster than direct
    level = level_stats(1, 1, 10, raw)
    assert level.paths["nginx"].added_ttft_ms["median"] == -1.0
    assert math.isnan(level.ratio("nginx", "median"))
    del raw["litellm"]
    assert math.isnan(level_stats(1, 1, 10, raw).ratio("litellm", "median"))


def test_pooling_rounds_adds_everything_up():
    pooled = PathRaw()
    pooled.add(_raw([1, 2], [10, 20], timeouts=1, relay_cpu_s=0.5, errors=["boom"]))
    pooled.add(_raw([3], [30], relay_cpu_s=0.25, wall_s=1.5, mismatches=["differs"]))
    assert pooled.answers == 3 and pooled.ttft == [0.001, 0.002, 0.003]
    assert pooled.timeouts == 1 and pooled.errors == ["boom"] and pooled.mismatches == ["differs"]
    assert pooled.relay_cpu_s == 0.75 and pooled.wall_s == 1.5


def test_the_report_has_a_table_per_level_the_ratios_and_the_failures():
    results = SideBySide(
        machine="2 CPU (test)",
        setup=["fake endpoint", "nginx"],
        options={"tokens": 200, "rate": 100.0, "rounds": 3, "min_answers": 10},
        levels=[level_stats(1, 3, 4, _level()), level_stats(50, 3, 1, _level())],
        notes=["C=50 LiteLLM: 2 turn(s) timed out after 120 s"],
        failures=["C=50 app: 1 answer(s) differ"],
    )
    text = report(results)
    lines = text.splitlines()
    assert "C = 1 (3 round(s) × 1 client(s) × 4 turn(s) per path)" in text
    assert "C = 50 (3 round(s) × 50 client(s) × 1 turn(s) per path)" in text
    litellm_row = next(line for line in lines if line.startswith("| LiteLLM |"))
    cells = [cell.strip() for cell in litellm_row.strip("|").split("|")]
    #        path, answers, failed, TTFT med, p99, added med, added p99, total med, total added,
    assert cells == ["LiteLLM", "100", "2", "90.0", "139.0", "40.0", "40.0", "2,150", "100.0",
                     "70.0", "100.0", "0.00", "50.0", "0.25×", "0.25×"]  # fmt: skip
    summary = next(line for line in lines if line.startswith("| 50 |"))
    assert [c.strip() for c in summary.strip("|").split("|")] == [
        "50", "1.00", "40.0", "10.0", "1.00", "40.0", "10.0", "0.25×", "0.25×", "10×", "10×"
    ]  # fmt: skip
    assert "  - C=50 LiteLLM: 2 turn(s) timed out after 120 s" in lines
    assert lines[-1] == "FAILURE: C=50 app: 1 answer(s) differ"
    # Markdown tables: every row of a table has as many cells as its header.
    rows = [line for line in lines if line.startswith("|")]
    assert {line.count("|") for line in rows} == {16, 12}


@pytest.mark.parametrize(
    ("data", "text"),
    [
        # The fake's bytes, and LiteLLM's re-serialisation of the same chunk.
        (b' {"choices":[{"index":0,"delta":{"content":"Good"},"finish_reason":null}]}', "Good"),
        (b'{"id": "x", "choices": [{"delta": {"content": " q\\u00e9"}}]}', " qé"),
        (b'{"choices":[{"delta":{"role":"assistant","content":""}}]}', ""),
        (b'{"choices":[],"usage":{"completion_tokens":3}}', ""),
        (b'{"choices":[{"delta":{"content":null}}]}', ""),
        (b" [DONE]", ""),
        (b'{"choices":[{"delta":{"content":"cut', ""),
    ],
)
def test_sse_data_lines_give_their_text_whatever_the_serialisation(data, text):
    assert _content(data) == text


def test_flags_override_the_quick_defaults():
    o = options_from(parser().parse_args(["--quick", "--rounds", "2", "--concurrency", "1,5"]))
    assert o.rounds == 2 and o.concurrency == (1, 5) and o.tokens == 60 and not o.scale_out
    o = options_from(parser().parse_args(["--tokens", "50", "--scale-out"]))
    assert o.tokens == 50 and o.rounds == 3 and o.concurrency == (1, 10, 50, 200) and o.scale_out
    with pytest.raises(SystemExit, match="at least 1"):
        options_from(parser().parse_args(["--rounds", "0"]))
    with pytest.raises(SystemExit, match="--concurrency"):
        options_from(parser().parse_args(["--concurrency", "1,ten"]))


def test_scale_out_without_postgresql_and_redis_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    with pytest.raises(SystemExit, match="needs PostgreSQL and Redis.*missing: REDIS_URL"):
        sidebyside(["--scale-out"])
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(SystemExit, match="missing: DATABASE_URL"):
        sidebyside(["--scale-out"])
