"""The history search benchmark: ``python -m tests.bench.search [...]`` (``make searchbench``).

Times the history search on a big history: seeds N conversations of a few messages each
and prints the median and p95 time of several queries. Runs on a throwaway database (a
SQLite file in a temporary folder, or a new database on the server DATABASE_URL names,
dropped afterwards), never on your data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.bench import setup_django


def parser() -> argparse.ArgumentParser:
    from tests.bench.measure_search import Options

    d = Options()
    p = argparse.ArgumentParser(prog="python -m tests.bench.search", description=__doc__)
    p.add_argument("--conversations", type=int, default=d.conversations)
    p.add_argument("--messages", type=int, default=d.messages, help="per conversation")
    p.add_argument("--repeat", type=int, default=d.repeat, help="runs per query")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument(
        "--scan", action="store_true", help="time the fallback (icontains), not the index"
    )
    return p


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    setup_django()
    opts = parser().parse_args(argv)
    from tests.bench.measure_search import Options, report, run_bench, throwaway_database

    options = Options(
        conversations=opts.conversations,
        messages=opts.messages,
        repeat=opts.repeat,
        seed=opts.seed,
        scan=opts.scan,
    )
    if options.conversations < 1 or options.messages < 1 or options.repeat < 1:
        raise SystemExit("searchbench: --conversations, --messages and --repeat must be at least 1")
    with (
        tempfile.TemporaryDirectory(prefix="searchbench-") as tmp,
        throwaway_database(Path(tmp)),
    ):
        results = run_bench(options, log=_log)
    print(report(results))


if __name__ == "__main__":
    main()
