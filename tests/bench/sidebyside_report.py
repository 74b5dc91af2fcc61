"""The side-by-side benchmark's bookkeeping: the order of the paths in each round, the
turns each client sends, the statistics of a level and the printed tables. No I/O here,
so it is tested on made-up numbers (tests/unit/test_sidebyside_report.py)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.report import _table
from tests.bench.streams import ms, percentile

PATHS = ("direct", "nginx", "litellm", "app")
LABELS = {"direct": "direct", "nginx": "nginx", "litellm": "LiteLLM", "app": "app"}


def rotation(k: int, paths: tuple[str, ...] = PATHS) -> list[str]:
    """The order of the paths in round ``k``: it starts at path k mod n, so that drift
    over a level (a warming cache, a neighbour's load) hits every path alike."""
    start = k % len(paths)
    return list(paths[start:] + paths[:start])


@dataclass
class Options:
    concurrency: tuple[int, ...] = (1, 10, 50, 200)
    tokens: int = 200
    rate: float = 100.0
    rounds: int = 3
    min_answers: int = 10  # per path and level, all rounds pooled
    scale_out: bool = False

    @classmethod
    def quick(cls) -> Options:
        return cls(concurrency=(1, 10), tokens=60, rounds=1, min_answers=5)

    def conversations_needed(self) -> int:
        return 4 + sum(
            c * turns_per_client(c, self.rounds, self.min_answers) * self.rounds
            for c in self.concurrency
        )


def turns_per_client(c: int, rounds: int, min_answers: int) -> int:
    """Turns each of ``c`` clients sends per round so a path gets at least
    ``min_answers`` answers over the level's ``rounds`` rounds."""
    return max(1, math.ceil(min_answers / (c * max(1, rounds))))


@dataclass
class PathRaw:
    """Everything one path did at one level, all rounds pooled."""

    ttft: list[float] = field(default_factory=list)  # seconds
    total: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    relay_cpu_s: float = 0.0  # the relaying process(es); 0 for direct
    fake_cpu_s: float = 0.0
    client_cpu_s: float = 0.0  # this process: the clients
    wall_s: float = 0.0

    @property
    def answers(self) -> int:
        return len(self.total)

    def add(self, other: PathRaw) -> None:
        self.ttft += other.ttft
        self.total += other.total
        self.timeouts += other.timeouts
        self.errors += other.errors
        self.mismatches += other.mismatches
        self.relay_cpu_s += other.relay_cpu_s
        self.fake_cpu_s += other.fake_cpu_s
        self.client_cpu_s += other.client_cpu_s
        self.wall_s += other.wall_s


@dataclass
class PathStats:
    path: str
    answers: int
    timeouts: int
    errors: int
    mismatches: int
    ttft_ms: dict[str, float]
    added_ttft_ms: dict[str, float]
    total_ms: dict[str, float]
    added_total_ms: dict[str, float]
    cpu_ms_per_answer: float
    cpu_pct: float  # of one core, while the path ran
    fake_cpu_pct: float
    client_cpu_pct: float


@dataclass
class LevelStats:
    concurrency: int
    rounds: int
    turns: int
    paths: dict[str, PathStats] = field(default_factory=dict)

    def ratio(self, peer: str, stat: str) -> float:
        """The app's added TTFT over ``peer``'s (nan when the peer adds nothing)."""
        app, other = self.paths.get("app"), self.paths.get(peer)
        if app is None or other is None:
            return math.nan
        a, b = app.added_ttft_ms.get(stat, math.nan), other.added_ttft_ms.get(stat, math.nan)
        if math.isnan(a) or math.isnan(b) or b <= 0:
            return math.nan
        return a / b


def _stat(values: list[float], p: float) -> float:
    return ms(percentile(values, p)) if values else math.nan


def _pct(cpu_s: float, wall_s: float) -> float:
    return 100 * cpu_s / wall_s if wall_s > 0 else math.nan


def level_stats(c: int, rounds: int, turns: int, raw: dict[str, PathRaw]) -> LevelStats:
    """Medians and p99s of each path; 'added' = the path's percentile minus direct's."""
    level = LevelStats(c, rounds, turns)
    base = raw.get("direct", PathRaw())
    for path, r in raw.items():
        n = r.answers
        ttft = {"median": _stat(r.ttft, 50), "p99": _stat(r.ttft, 99)}
        total = {"median": _stat(r.total, 50), "p99": _stat(r.total, 99)}
        direct_ttft = {"median": _stat(base.ttft, 50), "p99": _stat(base.ttft, 99)}
        direct_total = {"median": _stat(base.total, 50), "p99": _stat(base.total, 99)}
        level.paths[path] = PathStats(
            path=path,
            answers=n,
            timeouts=r.timeouts,
            errors=len(r.errors),
            mismatches=len(r.mismatches),
            ttft_ms=ttft,
            added_ttft_ms={k: round(ttft[k] - direct_ttft[k], 2) for k in ttft},
            total_ms=total,
            added_total_ms={k: round(total[k] - direct_total[k], 2) for k in total},
            cpu_ms_per_answer=1000 * r.relay_cpu_s / n if n and path != "direct" else math.nan,
            cpu_pct=_pct(r.relay_cpu_s, r.wall_s) if path != "direct" else math.nan,
            fake_cpu_pct=_pct(r.fake_cpu_s, r.wall_s),
            client_cpu_pct=_pct(r.client_cpu_s, r.wall_s),
        )
    return level


@dataclass
class SideBySide:
    machine: str = ""
    setup: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    levels: list[LevelStats] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def level_table(level: LevelStats) -> list[str]:
    rows = []
    for path in PATHS:
        s = level.paths.get(path)
        if s is None:
            continue
        peer = path in ("nginx", "litellm")
        rows.append([
            LABELS[path], s.answers, s.timeouts + s.errors, s.ttft_ms["median"], s.ttft_ms["p99"],
            "" if path == "direct" else s.added_ttft_ms["median"],
            "" if path == "direct" else s.added_ttft_ms["p99"],
            s.total_ms["median"], "" if path == "direct" else s.added_total_ms["median"],
            s.cpu_ms_per_answer, s.cpu_pct, s.fake_cpu_pct, s.client_cpu_pct,
            _ratio(level.ratio(path, "median")) if peer else "",
            _ratio(level.ratio(path, "p99")) if peer else "",
        ])  # fmt: skip
    header = ["path", "answers", "failed", "TTFT med", "TTFT p99", "added med", "added p99",
              "total med", "total added", "CPU ms/answer", "CPU %", "fake CPU %",
              "clients CPU %", "app ÷ this med", "app ÷ this p99"]  # fmt: skip
    return _table(header, rows)


def summary_table(levels: list[LevelStats]) -> list[str]:
    rows = []
    for lv in levels:
        added = {p: s.added_ttft_ms for p, s in lv.paths.items()}
        rows.append([
            lv.concurrency,
            *(added.get(p, {}).get("median", math.nan) for p in ("nginx", "litellm", "app")),
            *(added.get(p, {}).get("p99", math.nan) for p in ("nginx", "litellm", "app")),
            _ratio(lv.ratio("litellm", "median")), _ratio(lv.ratio("litellm", "p99")),
            _ratio(lv.ratio("nginx", "median")), _ratio(lv.ratio("nginx", "p99")),
        ])  # fmt: skip
    header = ["C", "nginx med", "LiteLLM med", "app med", "nginx p99", "LiteLLM p99",
              "app p99", "app ÷ LiteLLM med", "app ÷ LiteLLM p99", "app ÷ nginx med",
              "app ÷ nginx p99"]  # fmt: skip
    return _table(header, rows)


def report(r: SideBySide) -> str:
    o = r.options
    lines = [f"Machine: {r.machine}", "Setup:", *(f"  - {s}" for s in r.setup)]
    lines += [
        f"Turns: {o['tokens']} tokens at {o['rate']:g} tokens/s from the fake endpoint, "
        f"{o['rounds']} round(s) per level, the four paths one after the other in each round "
        f"(round k starts at path k mod 4); at least {o['min_answers']} answers per path and "
        "level; C clients staggered over one answer's duration",
        "",
        "Latency in ms from the client's send to the first text (TTFT) and to the end of the "
        "answer (total); 'added' = this path minus direct at the same C, all rounds pooled. "
        "CPU ms/answer and CPU %: the relaying process(es), from /proc; CPU % is of one core "
        "while the path ran, as are the fake endpoint's and the clients' (this process). "
        "'app ÷ this': the app's added TTFT over this path's.",
    ]
    for lv in r.levels:
        lines += [
            "",
            f"C = {lv.concurrency} ({lv.rounds} round(s) × {lv.concurrency} client(s) × "
            f"{lv.turns} turn(s) per path)",
            *level_table(lv),
        ]
    if r.levels:
        lines += [
            "",
            "Added TTFT in ms, and the app's against the peers'",
            *summary_table(r.levels),
        ]
    if r.notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in r.notes)]
    for failure in r.failures:
        lines.append(f"FAILURE: {failure}")
    return "\n".join(lines)


def dump(results: SideBySide, path: Path) -> None:
    path.write_text(json.dumps(results.as_dict(), indent=2, default=str))
