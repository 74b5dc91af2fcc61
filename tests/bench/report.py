"""The benchmark's results, the targets they are held to, and the printed table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Level:
    concurrency: int
    answers: int = 0
    ttft_ms: dict[str, float] = field(default_factory=dict)
    direct_ttft_ms: dict[str, float] = field(default_factory=dict)
    added_ttft_ms: dict[str, float] = field(default_factory=dict)
    added_total_ms: dict[str, float] = field(default_factory=dict)
    delta_frames: float = 0.0
    delta_bytes: float = 0.0
    text_bytes: float = 0.0
    all_bytes: float = 0.0
    ratio: float = 0.0
    overhead_per_frame: float = 0.0
    cpu_s: float = 0.0
    cpu_ms_per_answer: float = 0.0
    machine_cpu_pct: float = 0.0
    peak_rss_mb: float = 0.0
    mismatches: int = 0


@dataclass
class Results:
    machine: str = ""
    setup: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    levels: list[Level] = field(default_factory=list)
    saturation: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    page: dict[str, float] = field(default_factory=dict)
    markdown: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _added_ttft(c: int, limit: float) -> Callable[[Results], tuple[bool, str] | None]:
    def check(r: Results) -> tuple[bool, str] | None:
        level = next((lv for lv in r.levels if lv.concurrency == c), None)
        if level is None:
            return None
        added = level.added_ttft_ms["median"]
        return added <= limit, f"{added:.1f} ms"

    return check


def _bytes_ok(r: Results) -> tuple[bool, str] | None:
    if not r.levels:
        return None
    worst = max(r.levels, key=lambda lv: lv.overhead_per_frame)
    ok = all(lv.delta_bytes <= 1.3 * lv.text_bytes + 60 * lv.delta_frames for lv in r.levels)
    return ok, f"text + {worst.overhead_per_frame:.0f} B per frame at worst"


def _relay_ok(r: Results) -> tuple[bool, str] | None:
    s = r.saturation
    if not s:
        return None
    return s["deltas_per_s"] >= 20_000, (
        f"{s['deltas_per_s']:,.0f}/s while relaying; {s['deltas_per_app_cpu_s']:,.0f} per "
        "CPU-second of the app process, turn set-up and final render included"
    )


def _memory_ok(key: str, limit: float) -> Callable[[Results], tuple[bool, str] | None]:
    def check(r: Results) -> tuple[bool, str] | None:
        if key not in r.memory:
            return None
        return r.memory[key] <= limit, f"{r.memory[key]:.1f} KB"

    return check


TARGETS: dict[str, Callable[[Results], tuple[bool, str] | None]] = {
    "added TTFT median at C=1 ≤ 3 ms": _added_ttft(1, 3),
    "added TTFT median at C=200 ≤ 15 ms": _added_ttft(200, 15),
    "socket bytes ≤ 1.3 × text + 60 B/frame": _bytes_ok,
    "≥ 20,000 upstream deltas/s relayed": _relay_ok,
    "≤ 256 KB per active run": _memory_ok("kb_per_active_run", 256),
    "≤ 64 KB per idle socket": _memory_ok("kb_per_idle_socket", 64),
}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) + " |"

    return [line(cells[0]), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"] + [
        line(row) for row in cells[1:]
    ]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return (
            f"{value:,.0f}"
            if abs(value) >= 1000
            else f"{value:.2f}"
            if abs(value) < 10
            else f"{value:.1f}"
        )
    return str(value)


def report(r: Results) -> str:
    o = r.options
    lines = [
        f"Machine: {r.machine}",
        f"Setup: {r.setup}",
        f"Turns: {o['tokens']} tokens at {o['rate']:g} tokens/s, {o['turns']} per client "
        f"(at least {o['min_answers']} per level), clients staggered over one answer's duration",
        "",
        "Latency in ms ('added': through the app minus the same stream read straight from "
        "the endpoint at the same concurrency)",
        *_table(
            ["C", "answers", "TTFT med", "TTFT p99", "direct med", "direct p99",
             "added med", "added p99", "total added med", "total added p99"],
            [[lv.concurrency, lv.answers, lv.ttft_ms["median"], lv.ttft_ms["p99"],
              lv.direct_ttft_ms["median"], lv.direct_ttft_ms["p99"], lv.added_ttft_ms["median"],
              lv.added_ttft_ms["p99"], lv.added_total_ms["median"], lv.added_total_ms["p99"]]
             for lv in r.levels],
        ),
        "",
        "Traffic and cost per answer (delta frames only; the final render adds one frame)",
        *_table(
            ["C", "frames", "delta B", "text B", "ratio", "B/frame over text", "all B",
             "app CPU s", "CPU ms/answer", "machine CPU %", "peak RSS MB", "mismatches"],
            [[lv.concurrency, lv.delta_frames, lv.delta_bytes, lv.text_bytes, lv.ratio,
              lv.overhead_per_frame, lv.all_bytes, lv.cpu_s, lv.cpu_ms_per_answer,
              lv.machine_cpu_pct, lv.peak_rss_mb, lv.mismatches] for lv in r.levels],
        ),
        "",
    ]  # fmt: skip
    s = r.saturation
    if s:
        lines.append(
            f"Saturation ({s['streams']:.0f} streams at full speed, {s['answers']:.0f} answers): "
            f"{s['deltas_per_s']:,.0f} upstream deltas/s relayed "
            f"({s['deltas_per_app_cpu_s']:,.0f} per app CPU-second, turns included; the "
            "fake endpoint alone "
            f"serves {s['fake_alone_deltas_per_s']:,.0f}/s; {s['frames_per_answer']:.0f} frames "
            f"per answer; machine CPU {s['machine_cpu_pct']:.0f} %)"
        )
    m = r.memory
    if m:
        lines.append(
            f"Memory: {m['kb_per_idle_socket']:.1f} KB per idle socket "
            f"({m['idle_sockets']:.0f} open), {m['kb_per_active_run']:.1f} KB per active run "
            f"({m['active_runs']:.0f} streaming, all stopped after: {m['stopped']:.0f})"
        )
    p = r.page
    if p:
        lines.append(
            f"Page: a conversation of {p['messages']:.0f} messages renders in "
            f"{p['median_ms']:.1f} ms (median of 5, {p['kb']:.0f} KB of HTML)"
        )
    md = r.markdown
    if md:
        lines.append(
            f"Markdown while streaming ({md['answers']:.0f} of these answers, in the bench "
            f"process): {md['streaming_ms']:.2f} ms CPU per answer to split and render its "
            f"blocks once (the final render: {md['final_ms']:.2f} ms); parsed "
            f"{md['parsed']:.1f}× the text; frames {md['ratio']:.2f}× the text "
            f"(+{md['overhead_per_frame']:.0f} B/frame). A {md['long_kb']:.0f} KB answer: "
            f"{md['long_streaming_ms']:.0f} ms (final {md['long_final_ms']:.0f} ms), frames "
            f"{md['long_ratio']:.2f}× the text"
        )
    lines += ["", "Targets:"]
    for name, check in TARGETS.items():
        found = check(r)
        if found is None:
            lines.append(f"  [n/a] {name}")
        else:
            lines.append(f"  [{'met' if found[0] else 'MISSED'}] {name}: {found[1]}")
    for failure in r.failures:
        lines.append(f"  FAILURE: {failure}")
    return "\n".join(lines)


def dump(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.as_dict(), indent=2, default=str))
