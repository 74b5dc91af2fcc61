from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


def _ints(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise CommandError(
            f"--concurrency takes numbers separated by commas, got {raw!r}"
        ) from None
    if not values or min(values) < 1:
        raise CommandError("--concurrency needs at least one level, each at least 1")
    return values


class Command(BaseCommand):
    help = (
        "Measure the relay: time to first token, bytes, CPU and memory of one daphne process "
        "streaming from the fake endpoint over HTTP to real websocket clients. Runs on a "
        "throwaway database (a SQLite file in a temporary folder, or a new database on the "
        "server DATABASE_URL names), never on your data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        from chat.bench.relay import Options

        d = Options()
        parser.add_argument("--quick", action="store_true", help="a ~20 s smoke run")
        parser.add_argument(
            "--concurrency",
            default=",".join(map(str, d.concurrency)),
            help="concurrent clients per level (default: %(default)s)",
        )
        parser.add_argument("--tokens", type=int, default=d.tokens, help="tokens per answer")
        parser.add_argument("--rate", type=float, default=d.rate, help="tokens/s per answer")
        parser.add_argument("--turns", type=int, default=d.turns, help="turns per client")
        parser.add_argument(
            "--min-answers", type=int, default=d.min_answers, help="answers per level, at least"
        )
        parser.add_argument("--saturation-clients", type=int, default=d.saturation_clients)
        parser.add_argument("--saturation-tokens", type=int, default=d.saturation_tokens)
        parser.add_argument("--idle-sockets", type=int, default=d.idle_sockets)
        parser.add_argument("--active-runs", type=int, default=d.active_runs)
        parser.add_argument("--page-messages", type=int, default=d.page_messages)
        parser.add_argument("--json", type=Path, help="also write the results to this file")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            import websockets  # noqa: F401
        except ImportError:
            raise CommandError(
                "relaybench needs the websockets package: pip install -e '.[test]'"
            ) from None
        from chat.bench import harness
        from chat.bench.relay import Options, run_bench
        from chat.bench.report import dump, report

        if opts["quick"]:
            options = Options.quick()
        else:
            options = Options(
                concurrency=_ints(opts["concurrency"]),
                tokens=opts["tokens"],
                rate=opts["rate"],
                turns=opts["turns"],
                min_answers=opts["min_answers"],
                saturation_clients=opts["saturation_clients"],
                saturation_tokens=opts["saturation_tokens"],
                idle_sockets=opts["idle_sockets"],
                active_runs=opts["active_runs"],
                page_messages=opts["page_messages"],
            )
        if options.active_runs > 200 or max(options.concurrency) > 200:
            self.stderr.write(
                "note: the app's HTTP pool holds 200 upstream connections; more concurrent "
                "runs wait for one"
            )
        self._static_manifest()

        def log(text: str) -> None:
            self.stderr.write(text)
            sys.stderr.flush()

        with tempfile.TemporaryDirectory(prefix="relaybench-") as tmp:
            workdir = Path(tmp)
            with harness.throwaway_database(workdir):
                results = run_bench(options, log=log, workdir=workdir)
        self.stdout.write(report(results))
        if opts["json"]:
            dump(results, opts["json"])
        if results.failures:
            raise CommandError("; ".join(results.failures))

    def _static_manifest(self) -> None:
        """The app process renders pages with hashed static names: collect once."""
        root = settings.STATIC_ROOT
        if settings.DEBUG or settings.TESTING or root is None:
            return
        if not (Path(root) / "staticfiles.json").exists():
            call_command("collectstatic", interactive=False, verbosity=0)
