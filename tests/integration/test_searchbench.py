"""The search benchmark with tiny numbers, so that it cannot rot. It checks that the
command runs end to end and that what it measures is real, never how fast it was."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from django.db import connection

from chat.models import Conversation, Message
from tests.bench.measure_search import Options, report, run_bench
from tests.bench.search import main as searchbench
from tests.conftest import ROOT, server_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_bench_seeds_and_times_every_query():
    results = run_bench(Options(conversations=30, messages=3, repeat=2, seed=7))
    assert Conversation.objects.count() == 30 + 3
    assert Message.objects.count() == results.messages == (30 + 3) * 3
    assert [len(row.times_ms) for row in results.rows] == [2] * 8
    by_label = {row.label: row for row in results.rows}
    assert by_label["common word"].hits == 30  # the most frequent word is everywhere
    assert by_label["no match"].hits == 0
    assert all(row.median > 0 and row.p95 >= row.median for row in results.rows)
    table = report(results)
    assert "| common word |" in table and "median ms" in table
    assert f"search backend {results.backend}" in table


def test_the_command_runs_on_a_throwaway_database_and_prints_the_table(tmp_path):
    env = server_env()
    env["DATA_DIR"] = str(tmp_path)
    env.pop("SQLITE_PATH", None)  # a SQLite run starts from the (untouched) default path
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.search",
         "--conversations", "20", "--messages", "2", "--repeat", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "Search benchmark: 20 conversations × 2 messages" in out
    rows = [line for line in out.splitlines() if re.match(r"\| .+ \| `", line)]
    assert len(rows) == 8
    # Its database is gone, and the one this test runs on got none of its rows.
    assert not Conversation.objects.exists()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [f"searchbench_{proc.pid}"]
            )
            assert cursor.fetchall() == []
    else:
        assert list(tmp_path.glob("*.sqlite3*")) == []


def test_the_command_refuses_nonsense():
    with pytest.raises(SystemExit, match="at least 1"):
        searchbench(["--conversations", "0"])
