from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Time the history search on a big history: seeds N conversations of a few messages "
        "each and prints the median and p95 time of several queries. Runs on a throwaway "
        "database (a SQLite file in a temporary folder, or a new database on the server "
        "DATABASE_URL names, dropped afterwards), never on your data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        from chat.bench.search import Options

        d = Options()
        parser.add_argument("--conversations", type=int, default=d.conversations)
        parser.add_argument("--messages", type=int, default=d.messages, help="per conversation")
        parser.add_argument("--repeat", type=int, default=d.repeat, help="runs per query")
        parser.add_argument("--seed", type=int, default=d.seed, help="random seed")
        parser.add_argument(
            "--scan", action="store_true", help="time the fallback (icontains), not the index"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from chat.bench.search import Options, report, run_bench, throwaway_database

        options = Options(
            conversations=opts["conversations"],
            messages=opts["messages"],
            repeat=opts["repeat"],
            seed=opts["seed"],
            scan=opts["scan"],
        )
        if options.conversations < 1 or options.messages < 1 or options.repeat < 1:
            raise CommandError("--conversations, --messages and --repeat must be at least 1")

        def log(text: str) -> None:
            self.stderr.write(text)
            sys.stderr.flush()

        with (
            tempfile.TemporaryDirectory(prefix="searchbench-") as tmp,
            throwaway_database(Path(tmp)),
        ):
            results = run_bench(options, log=log)
        self.stdout.write(report(results))
