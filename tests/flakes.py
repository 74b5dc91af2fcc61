"""The flake hunt: run tests K times while this command keeps every core busy, then name
each test that failed at least once, with its failure.

    python -m tests.flakes                       # browser, integration and peer tests, K=3
    python -m tests.flakes --rounds 5 tests/browser/test_compare_browser.py
    python -m tests.flakes --load 0 tests/faults # no extra load
    make flakes FLAKES_ARGS="--rounds 1 tests/browser"

A test that passes on a quiet machine and fails here depends on how fast the machine is:
that is a defect (it waits a fixed time, or asserts a duration). The load is the point:
``stress-ng --cpu N`` when Debian's stress-ng is installed, else N busy Python processes;
N defaults to the number of cores, so the tests share every core with a busy neighbour,
as on a laptop running a build or a shared CI runner.

Exit status: 0 when every round passed, 1 when any test failed in any round, 2 when a
round ran no test or pytest could not run. Standard library only (plus pytest, which it
runs as a subprocess with the same Python).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ["tests/browser", "tests/integration", "tests/peers"]


def _spin() -> None:  # pragma: no cover - runs in the load processes
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        pass


@contextmanager
def cpu_load(workers: int):
    """Keep ``workers`` cores busy while the block runs."""
    if workers <= 0:
        yield "none"
        return
    stress = shutil.which("stress-ng")
    if stress:
        procs = [
            subprocess.Popen(
                [stress, "--cpu", str(workers), "--quiet"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        ]
        what = f"stress-ng --cpu {workers}"
    else:
        code = "import tests.flakes as f; f._spin()"
        procs = [
            subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
            for _ in range(workers)
        ]
        what = f"{workers} busy Python processes"
    try:
        yield what
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class Round:
    number: int
    returncode: int
    seconds: float
    tests: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    seconds_by_dir: dict[str, float] = field(default_factory=dict)


def read_junit(path: Path) -> tuple[int, int, dict[str, str], dict[str, float]]:
    """(tests run, skipped, {test id: failure text}, {test directory: seconds spent in its
    tests, summed over the workers}) from pytest's JUnit XML."""
    if not path.exists():
        return 0, 0, {}, {}
    root = ET.parse(path).getroot()
    run = skipped = 0
    failures: dict[str, str] = {}
    seconds: dict[str, float] = defaultdict(float)
    for case in root.iter("testcase"):
        run += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        directory = ".".join(case.get("classname", "").split(".")[:2])
        seconds[directory] += float(case.get("time") or 0)
        if case.find("skipped") is not None:
            skipped += 1
        for kind in ("failure", "error"):
            problem = case.find(kind)
            if problem is not None:
                text = (problem.get("message") or "") + "\n" + (problem.text or "")
                failures[name] = failures.get(name, "") + f"[{kind}] {text.strip()}\n"
    return run, skipped, failures, dict(seconds)


def run_round(number: int, paths: list[str], pytest_args: list[str], workdir: Path) -> Round:
    junit = workdir / f"round-{number}.xml"
    cmd = [
        sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
        f"--junitxml={junit}", "-o", "junit_logging=no", *pytest_args,
    ]  # fmt: skip
    print(f"\n== round {number}: {' '.join(cmd[2:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT)
    result = Round(number, proc.returncode, time.monotonic() - started)
    result.tests, result.skipped, result.failures, result.seconds_by_dir = read_junit(junit)
    return result


def report(rounds: list[Round]) -> int:
    """Print every test that failed at least once; the exit status of the hunt."""
    failed: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in rounds:
        for name, text in r.failures.items():
            failed[name].append((r.number, text))
    print("\n== flake hunt")
    for r in rounds:
        print(
            f"round {r.number}: {r.tests} tests, {len(r.failures)} failed, "
            f"{r.skipped} skipped, {r.seconds:.0f} s (pytest exit {r.returncode})"
        )
        spent = ", ".join(f"{d} {s:.0f} s" for d, s in sorted(r.seconds_by_dir.items()))
        if spent:
            print(f"  time in tests (summed over workers): {spent}")
    for name, hits in sorted(failed.items()):
        print(f"\nFAILED {len(hits)}/{len(rounds)}: {name}")
        for number, text in hits:
            lines = text.strip().splitlines()
            shown = "\n    ".join(lines[:12] + (["..."] if len(lines) > 12 else []))
            print(f"  round {number}:\n    {shown}")
    if failed:
        print(f"\n{len(failed)} test(s) failed at least once in {len(rounds)} round(s).")
        return 1
    if any(r.tests == 0 or r.returncode not in (0, 1) for r in rounds):
        print("\nA round ran no test or pytest could not run (see its output above).")
        return 2
    print(f"\n0 tests failed in {len(rounds)} round(s) under load.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help=f"test paths (default: {DEFAULT_PATHS})")
    parser.add_argument("--rounds", type=int, default=3, help="K: how many runs (default 3)")
    parser.add_argument(
        "--load",
        type=int,
        default=os.cpu_count() or 2,
        help="busy cores while the tests run (default: all of them; 0 for none)",
    )
    parser.add_argument(
        "--pytest",
        action="append",
        default=[],
        help='further pytest arguments, e.g. --pytest="-k lane -x" (repeatable: the Makefile '
        "gives the xdist options, FLAKES_ARGS='--pytest=\"--durations=40\"' adds to them)",
    )
    args = parser.parse_args(argv)
    paths = args.paths or DEFAULT_PATHS
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="flakes-") as tmp, cpu_load(args.load) as what:
        print(f"== load: {what}; {args.rounds} round(s) of {' '.join(paths)}", flush=True)
        for number in range(1, args.rounds + 1):
            pytest_args = [arg for chunk in args.pytest for arg in chunk.split()]
            rounds.append(run_round(number, paths, pytest_args, Path(tmp)))
    return report(rounds)


if __name__ == "__main__":
    sys.exit(main())
