"""The relay benchmark: ``python -m tests.bench.relay [--quick] [...]`` (``make bench``).

Measures time to first token, bytes, CPU and memory of one daphne process streaming from
the fake endpoint over HTTP to real websocket clients, and prints a table. Runs on a
throwaway database (a SQLite file in a temporary folder, or a new database on the server
DATABASE_URL names), never on your data.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench import setup_django

if TYPE_CHECKING:
    from tests.bench.measure_relay import Options


def _ints(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise SystemExit(
            f"relaybench: --concurrency takes numbers separated by commas, got {raw!r}"
        ) from None
    if not values or min(values) < 1:
        raise SystemExit("relaybench: --concurrency needs at least one level, each at least 1")
    return values


def parser() -> argparse.ArgumentParser:
    from tests.bench.measure_relay import Options

    d = Options()
    p = argparse.ArgumentParser(prog="python -m tests.bench.relay", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a ~20 s smoke run")
    p.add_argument(
        "--concurrency",
        default=",".join(map(str, d.concurrency)),
        help="concurrent clients per level (default: %(default)s)",
    )
    p.add_argument("--tokens", type=int, default=d.tokens, help="tokens per answer")
    p.add_argument("--rate", type=float, default=d.rate, help="tokens/s per answer")
    p.add_argument("--turns", type=int, default=d.turns, help="turns per client")
    p.add_argument(
        "--min-answers", type=int, default=d.min_answers, help="answers per level, at least"
    )
    p.add_argument("--saturation-clients", type=int, default=d.saturation_clients)
    p.add_argument("--saturation-tokens", type=int, default=d.saturation_tokens)
    p.add_argument("--idle-sockets", type=int, default=d.idle_sockets)
    p.add_argument("--active-runs", type=int, default=d.active_runs)
    p.add_argument("--page-messages", type=int, default=d.page_messages)
    p.add_argument("--json", type=Path, help="also write the results to this file")
    return p


def _options(opts: argparse.Namespace) -> Options:
    from tests.bench.measure_relay import Options

    if opts.quick:
        return Options.quick()
    return Options(
        concurrency=_ints(opts.concurrency),
        tokens=opts.tokens,
        rate=opts.rate,
        turns=opts.turns,
        min_answers=opts.min_answers,
        saturation_clients=opts.saturation_clients,
        saturation_tokens=opts.saturation_tokens,
        idle_sockets=opts.idle_sockets,
        active_runs=opts.active_runs,
        page_messages=opts.page_messages,
    )


def main(argv: list[str] | None = None) -> None:
    setup_django()
    opts = parser().parse_args(argv)
    try:
        import websockets  # noqa: F401
    except ImportError:
        raise SystemExit(
            "relaybench needs the websockets package: pip install -e '.[test]'"
        ) from None
    from tests.bench import harness
    from tests.bench.measure_relay import run_bench
    from tests.bench.report import dump, report

    options = _options(opts)
    if options.active_runs > 200 or max(options.concurrency) > 200:
        harness.log(
            "note: the app's HTTP pool holds 200 upstream connections; more concurrent "
            "runs wait for one"
        )
    harness.run_and_report(
        "relaybench",
        lambda workdir: run_bench(options, log=harness.log, workdir=workdir),
        report,
        dump,
        opts.json,
    )


if __name__ == "__main__":
    main()
