"""The relay benchmark, end to end with tiny numbers, so that it cannot rot. It checks
that every phase runs and that its accounting adds up, never how fast anything was."""

from __future__ import annotations

import pytest

from tests.bench.measure_relay import Options, run_bench
from tests.bench.relay import main as relaybench
from tests.bench.report import report

pytestmark = pytest.mark.django_db(transaction=True)


def test_relaybench_runs_every_phase_and_its_accounting_adds_up(tmp_path):
    options = Options(
        concurrency=(1, 3),
        tokens=30,
        rate=300,
        turns=1,
        min_answers=1,
        saturation_clients=1,
        saturation_tokens=400,
        saturation_turns=1,
        idle_sockets=6,
        active_runs=3,
        page_messages=20,
    )
    results = run_bench(options, log=lambda _: None, workdir=tmp_path)

    assert results.failures == []
    assert [level.concurrency for level in results.levels] == [1, 3]
    for level in results.levels:
        # Every answer streamed, and what the socket showed is what was saved.
        assert level.answers == level.concurrency and level.mismatches == 0
        assert level.delta_frames >= 1 and level.text_bytes > 0
        # Frames carry only new text (the socket grows linearly with the answer).
        assert level.delta_bytes <= 1.3 * level.text_bytes + 60 * level.delta_frames
        assert level.all_bytes > level.delta_bytes  # plus the turn and the final render
        assert level.ttft_ms["median"] > 0 and level.direct_ttft_ms["median"] > 0
    assert results.saturation["deltas"] == 400
    assert results.saturation["deltas_per_s"] > 0
    assert results.memory["idle_sockets"] == 6
    assert results.memory["active_runs"] == 3 and results.memory["stopped"] == 3
    assert results.page["messages"] == 20 and results.page["kb"] > 0

    table = report(results)
    assert "| 3 |" in table and "Targets:" in table and "FAILURE" not in table


def test_relaybench_refuses_bad_concurrency_levels():
    with pytest.raises(SystemExit, match="--concurrency"):
        relaybench(["--concurrency", "1,ten"])
    with pytest.raises(SystemExit, match="at least 1"):
        relaybench(["--concurrency", "0"])
