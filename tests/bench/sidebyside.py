"""The relay side by side with its peers: ``python -m tests.bench.sidebyside [--quick]
[--concurrency 1,10,50,200] [--tokens 200] [--rate 100] [--rounds N] [--scale-out]
[--json FILE]`` (``make sidebyside``).

The same paced stream from the fake endpoint, read four ways at the same concurrency:
straight from the endpoint (direct), through nginx (proxy_buffering off), through a
LiteLLM proxy, and through the app (real turns over the conversation websocket). Each level
runs R rounds; each round runs the four paths one after the other in a rotated order. It
prints TTFT and total, what each path adds to direct, the app's added TTFT against the
peers', and the CPU each relaying process spent per answer. nginx and LiteLLM are installed
by the benchmark itself when missing (tests/bench/peers.py). Runs on a throwaway database
(a SQLite file, or a new database on the server DATABASE_URL names), never on your data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

from tests.bench import setup_django
from tests.bench.sidebyside_report import Options, SideBySide


def describe(o: Options, nginx_bin: str, apps: int) -> list[str]:
    from django.conf import settings
    from django.db import connection

    from tests.bench.measure_relay import describe_setup
    from tests.bench.peers import nginx_version
    from tests.peers.install import LITELLM_VERSION

    app = describe_setup()
    if o.scale_out:
        db = "PostgreSQL" if connection.vendor == "postgresql" else connection.vendor
        app = (
            f"{apps} daphne processes behind nginx (least_conn, websocket upgrade, "
            f"proxy_buffering off), {db}, Redis channel layer, frame interval "
            f"{settings.RUN_FRAME_INTERVAL * 1000:.0f} ms; CPU = both processes"
        )
    return [
        "fake endpoint: python -m chat.fake_upstream --ttft-ms 0 (one daphne process), "
        "behind every path",
        "direct: the clients straight to the fake endpoint",
        f"nginx {nginx_version(nginx_bin)}: one worker process, proxy_buffering off, "
        "HTTP/1.1 to the fake with keepalive 256, no access log",
        f"LiteLLM {LITELLM_VERSION} proxy (PyPI litellm[proxy]): its CLI's defaults, uvicorn "
        "with one worker process; model demo = openai/demo at the fake; master key; "
        "LITELLM_LOG=ERROR (no access log), offline cost map, no telemetry, no database",
        f"app: {app}; real turns over the conversation websocket, each on a fresh "
        "conversation, profile base_url = the fake endpoint",
        "clients: this process, one asyncio loop: an httpx.AsyncClient per HTTP path "
        "(connections = C), one websocket per app turn",
    ]


def run(o: Options, *, log: Callable[[str], None] = print, workdir: Path) -> SideBySide:
    """Install and start every process, measure, stop them. The caller owns the
    database (harness.throwaway_database)."""
    from django.conf import settings

    from tests.bench import harness, peers
    from tests.bench.measure_relay import Bench, describe_machine
    from tests.bench.measure_relay import Options as RelayOptions
    from tests.bench.measure_sidebyside import Runner

    logging.getLogger("httpx").setLevel(logging.WARNING)
    nginx_bin = peers.ensure_nginx()
    litellm_bin = peers.ensure_litellm()
    machine = describe_machine()
    results = SideBySide(options=asdict(o))
    with contextlib.ExitStack() as stack:
        log("starting the fake endpoint, the app, nginx and LiteLLM…")
        fake = harness.start_fake(workdir)
        stack.callback(fake.stop)
        fixture = harness.make_fixture(fake.url, o.conversations_needed())
        extra = {"CHANNELS_PREFIX": f"sidebyside{os.getpid()}"} if settings.REDIS_URL else {}
        env = harness.app_env(workdir, **extra)
        apps = []
        for i in range(2 if o.scale_out else 1):
            apps.append(harness.start_app(env, workdir, name=f"app-{i + 1}"))
            stack.callback(apps[-1].stop)
        nginx = peers.start_nginx(nginx_bin, workdir, fake, apps if o.scale_out else None)
        stack.callback(nginx.stop)
        litellm = peers.start_litellm(litellm_bin, workdir, fake)
        stack.callback(litellm.stop)
        app_url = nginx.app_url if o.scale_out else apps[0].url
        check = Bench(RelayOptions(), fake, apps[0], fixture)
        runner = Runner(o, fake, nginx, litellm, apps, app_url, fixture, check)
        runner.log = log
        try:
            asyncio.run(runner.run(results))
        except Exception:
            for p in (*apps, fake, nginx, litellm):
                log(f"{p.name} log:\n{p.log_tail()}")
            raise
        results.machine = (
            f"{machine} (at the start; {describe_machine().rsplit(', ', 1)[-1]} at the end)"
        )
        results.setup = describe(o, nginx_bin, len(apps))
    return results


# --- the command ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m tests.bench.sidebyside", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    quick = Options.quick()
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run: C={','.join(map(str, quick.concurrency))}, {quick.tokens} tokens, "
        f"{quick.rounds} round (flags given too still apply)",
    )
    p.add_argument("--concurrency", help=f"levels (default: {','.join(map(str, d.concurrency))})")
    p.add_argument("--tokens", type=int, help=f"tokens per answer (default: {d.tokens})")
    p.add_argument("--rate", type=float, help=f"tokens/s per answer (default: {d.rate:g})")
    p.add_argument("--rounds", type=int, help=f"rounds per level (default: {d.rounds})")
    p.add_argument(
        "--min-answers",
        type=int,
        help=f"answers per path and level, at least (default: {d.min_answers})",
    )
    p.add_argument("--scale-out", action="store_true",
                   help="the app as 2 daphne processes behind nginx on PostgreSQL + Redis "
                   "(needs DATABASE_URL and REDIS_URL)")  # fmt: skip
    p.add_argument("--json", type=Path, help="also write the results to this file")
    return p


def options_from(opts: argparse.Namespace) -> Options:
    from tests.bench.relay import _ints

    o = Options.quick() if opts.quick else Options()
    given = {f.name: getattr(opts, f.name, None) for f in fields(Options)}
    if opts.concurrency is not None:
        given["concurrency"] = _ints(opts.concurrency)
    given["scale_out"] = opts.scale_out or None
    for name, value in given.items():
        if value is not None:
            setattr(o, name, value)
    if o.rounds < 1 or o.tokens < 1 or o.min_answers < 1:
        raise SystemExit("sidebyside: --rounds, --tokens and --min-answers must be at least 1")
    return o


def main(argv: list[str] | None = None) -> None:
    opts = parser().parse_args(argv)
    if opts.scale_out:
        missing = [v for v in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(v)]
        os.environ.setdefault("DATABASE_URL", "")
        if missing or not os.environ["DATABASE_URL"].startswith("postgres"):
            raise SystemExit(
                "sidebyside --scale-out needs PostgreSQL and Redis: set DATABASE_URL "
                "(postgres://…) and REDIS_URL (redis://…)"
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
    setup_django()
    o = options_from(opts)
    from tests.bench import harness
    from tests.bench.sidebyside_report import dump, report

    harness.run_and_report(
        "sidebyside",
        lambda workdir: run(o, log=harness.log, workdir=workdir),
        report,
        dump,
        opts.json,
    )


if __name__ == "__main__":
    main()
