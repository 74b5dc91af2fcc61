"""The side-by-side benchmark (tests/bench/sidebyside.py) end to end in its smallest form,
so that it cannot rot: nginx and LiteLLM in front of the fake endpoint, next to the app,
one round at C=1. It checks that every path answered and that the accounting adds up,
never how fast anything was.

Needs nginx and LiteLLM (``make peers`` installs LiteLLM; ``make sidebyside`` installs
both): skipped loudly without them, except with ``PLAYGROUND_PEER_TESTS=required``, where
the benchmark's own setup installs what is missing (nginx only as root with apt-get) and
the test fails if it cannot.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings

import pytest

from tests.peers import install

pytestmark = [
    pytest.mark.peers,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),  # installing nginx, the first time in CI
]


def _present_or_skip() -> None:
    missing = []
    if shutil.which("nginx") is None and not os.access("/usr/sbin/nginx", os.X_OK):
        missing.append("nginx")
    if not install.LITELLM_BIN.exists():
        missing.append(f"LiteLLM ({install.LITELLM_BIN})")
    if not missing:
        return
    if os.environ.get("PLAYGROUND_PEER_TESTS") == "required":
        return  # the benchmark's setup installs them, or fails saying why
    reason = (
        f"SIDE-BY-SIDE BENCHMARK TEST SKIPPED: {' and '.join(missing)} not installed; "
        "run `make sidebyside` once (it installs both) or `make peers` (LiteLLM)"
    )
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def test_sidebyside_runs_every_path_and_its_accounting_adds_up(tmp_path):
    from tests.bench.sidebyside import run
    from tests.bench.sidebyside_report import PATHS, Options, report

    _present_or_skip()
    options = Options(concurrency=(1,), tokens=20, rate=200, rounds=1, min_answers=2)
    results = run(options, log=lambda _: None, workdir=tmp_path)

    assert results.failures == [] and results.notes == []
    (level,) = results.levels
    assert level.concurrency == 1 and level.turns == 2
    for path in PATHS:
        stats = level.paths[path]
        # Every turn answered; every streamed text was the direct one (and the app's, the
        # saved one): a mismatch would be a failure above.
        assert (stats.answers, stats.timeouts, stats.errors, stats.mismatches) == (2, 0, 0, 0)
        assert 0 < stats.ttft_ms["median"] <= stats.ttft_ms["p99"] < stats.total_ms["median"]
    # Only the relaying processes spent CPU on a path's account.
    assert level.paths["app"].cpu_ms_per_answer > 0
    assert level.paths["litellm"].cpu_ms_per_answer > 0
    assert math.isnan(level.paths["direct"].cpu_ms_per_answer)
    assert any(line.startswith("LiteLLM 1.") for line in results.setup)
    rows = [line.split("|")[1].strip() for line in report(results).splitlines()[:-1]
            if line.startswith("| ")]  # fmt: skip
    assert rows[1:5] == ["direct", "nginx", "LiteLLM", "app"]
