"""The relay benchmark's measurements (``python -m tests.bench.relay`` prints them).

Everything goes over real sockets: websocket clients in this process, one daphne app
process, the fake endpoint in a third process reached over HTTP. Each phase samples the
app process's CPU time and resident memory from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from channels.db import database_sync_to_async
from django.conf import settings

from chat.models import Message
from tests.bench import harness
from tests.bench.procstat import RssSampler, cpu_seconds, rss_bytes
from tests.bench.report import Level, Results
from tests.bench.streams import (
    TURN_TIMEOUT,
    Answer,
    Direct,
    direct_stream,
    ms,
    percentile,
    relaying_time,
    ws_turn,
)
from tests.bench.wire import STOP_FRAME, fake_prompt, ws_connect

CONNECT_PARALLEL = 20


@dataclass
class Options:
    concurrency: tuple[int, ...] = (1, 10, 50, 200)
    tokens: int = 200
    rate: float = 100.0
    turns: int = 2
    min_answers: int = 10  # per level: a level of one client runs several turns
    saturation_clients: int = 4
    saturation_tokens: int = 4000
    saturation_turns: int = 3
    idle_sockets: int = 1000
    active_runs: int = 200
    page_messages: int = 500

    @classmethod
    def quick(cls) -> Options:
        return cls(
            concurrency=(1, 10),
            tokens=60,
            rate=100.0,
            turns=1,
            min_answers=5,
            saturation_clients=2,
            saturation_tokens=1500,
            saturation_turns=1,
            idle_sockets=50,
            active_runs=20,
            page_messages=500,
        )

    def conversations_needed(self) -> int:
        return (
            sum(self.concurrency)
            + self.saturation_clients
            + self.active_runs
            + min(self.idle_sockets, 500)
            + 2
        )


# --- the run --------------------------------------------------------------------------------
class Bench:
    def __init__(self, options: Options, fake: harness.Process, app: harness.Process, fixture):
        self.o = options
        self.fake = fake
        self.app = app
        self.fixture = fixture
        self.results = Results(options=asdict(options))
        self.mismatches: list[str] = []
        self.log: Callable[[str], None] = print

    # helpers
    def _prompt(self, label: str, tokens: int, rate: float) -> str:
        return fake_prompt(label, tokens=tokens, tps=rate, ttft_ms=0)

    async def _open(self, conversations: list[Any]) -> list[Any]:
        gate = asyncio.Semaphore(CONNECT_PARALLEL)

        async def one(conversation: Any) -> Any:
            async with gate:
                return await ws_connect(self.app.url, conversation.pk, self.fixture.session_key)

        return list(await asyncio.gather(*(one(c) for c in conversations)))

    @staticmethod
    async def _close(sockets: list[Any]) -> None:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    def _cpu(self) -> tuple[float, float, float]:
        return (
            cpu_seconds(self.app.pid) or 0.0,
            cpu_seconds(self.fake.pid) or 0.0,
            time.process_time(),
        )

    async def _check(self, answers: list[Answer]) -> tuple[int, int]:
        """Compare each streamed text with what was saved; (mismatches, tokens relayed)."""

        @database_sync_to_async
        def saved() -> dict[int, tuple[str, str, Any]]:
            ids = [a.message_id for a in answers if a.message_id]
            rows = Message.objects.filter(pk__in=ids).values_list(
                "id", "content", "status", "usage"
            )
            return {pk: (content, status, usage) for pk, content, status, usage in rows}

        rows = await saved()
        bad = tokens = 0
        for answer in answers:
            content, status, usage = rows.get(answer.message_id, ("", "", None))
            if answer.text != content or status != answer.status:
                bad += 1
                self.mismatches.append(
                    f"message {answer.message_id}: socket showed {len(answer.text)} chars "
                    f"({answer.status}), saved {len(content)} chars ({status}); "
                    f"same start: {content.startswith(answer.text[:50])}"
                )
            tokens += (usage or {}).get("completion_tokens", 0)
        return bad, tokens

    async def _ws_clients(
        self, count: int, body: Callable[[Any, int], Awaitable[list[Answer]]]
    ) -> tuple[list[Answer], dict[str, float]]:
        sockets = await self._open(self.fixture.take(count))
        await asyncio.sleep(0.2)
        before = self._cpu()
        started = time.perf_counter()
        with RssSampler(self.app.pid) as rss:
            batches = await asyncio.gather(*(body(ws, i) for i, ws in enumerate(sockets)))
        wall = time.perf_counter() - started
        after = self._cpu()
        await self._close(sockets)
        used = [b - a for a, b in zip(before, after, strict=True)]
        usage = {
            "wall_s": wall,
            "app_cpu_s": used[0],
            "machine_cpu_pct": 100 * sum(used) / (wall * (os.cpu_count() or 1)),
            "peak_rss_mb": rss.peak / 2**20,
        }
        return [a for batch in batches for a in batch], usage

    # phases
    async def warm_up(self) -> None:
        (ws,) = await self._open(self.fixture.take(1))
        for k in range(3):
            await ws_turn(ws, self._prompt(f"Warm-up {k}", 20, 0))
        await ws.close()
        async with httpx.AsyncClient() as client:
            await direct_stream(client, self.fake.url + "/v1/chat/completions", "warm-up")

    async def level(self, c: int) -> Level:
        o = self.o
        spread = (o.tokens / o.rate if o.rate > 0 else 0.5) / c
        turns = max(o.turns, math.ceil(o.min_answers / c))
        url = self.fake.url + "/v1/chat/completions"

        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        async with httpx.AsyncClient(limits=limits, timeout=TURN_TIMEOUT) as client:

            async def direct_client(i: int) -> list[Direct]:
                await asyncio.sleep(i * spread)
                prompts = [self._prompt(f"Bench turn {k}", o.tokens, o.rate) for k in range(turns)]
                return [await direct_stream(client, url, prompt) for prompt in prompts]

            directs = [d for b in await asyncio.gather(*map(direct_client, range(c))) for d in b]

        async def ws_client(ws: Any, i: int) -> list[Answer]:
            await asyncio.sleep(i * spread)
            return [
                await ws_turn(ws, self._prompt(f"Bench turn {k}", o.tokens, o.rate))
                for k in range(turns)
            ]

        answers, usage = await self._ws_clients(c, ws_client)
        bad, _ = await self._check(answers)
        return self._level_result(c, answers, directs, usage, bad)

    def _level_result(
        self, c: int, answers: list[Answer], directs: list[Direct], usage: dict, bad: int
    ) -> Level:
        ttft = [a.ttft for a in answers if a.ttft is not None]
        dttft = [d.ttft for d in directs if d.ttft is not None]
        total = [a.total for a in answers if a.total is not None]
        dtotal = [d.final_at - d.sent_at for d in directs]
        n = len(answers)
        text_bytes = sum(len(a.text.encode()) for a in answers) / n
        level = Level(concurrency=c, answers=n, mismatches=bad)
        for name, p in (("median", 50), ("p99", 99)):
            level.ttft_ms[name] = ms(percentile(ttft, p))
            level.direct_ttft_ms[name] = ms(percentile(dttft, p))
            level.added_ttft_ms[name] = ms(percentile(ttft, p) - percentile(dttft, p))
            level.added_total_ms[name] = ms(percentile(total, p) - percentile(dtotal, p))
        level.delta_frames = sum(a.delta_frames for a in answers) / n
        level.delta_bytes = sum(a.delta_bytes for a in answers) / n
        level.all_bytes = sum(a.bytes for a in answers) / n
        level.text_bytes = text_bytes
        level.ratio = level.delta_bytes / text_bytes if text_bytes else math.nan
        level.overhead_per_frame = (
            (level.delta_bytes - text_bytes) / level.delta_frames if level.delta_frames else 0
        )
        level.cpu_s = usage["app_cpu_s"]
        level.cpu_ms_per_answer = 1000 * usage["app_cpu_s"] / n
        level.machine_cpu_pct = usage["machine_cpu_pct"]
        level.peak_rss_mb = usage["peak_rss_mb"]
        if bad:
            self.results.failures.append(
                f"C={c}: {bad} answer(s) differ from the saved text: {self.mismatches[-bad:]}"
            )
        return level

    async def saturation(self) -> dict[str, float]:
        o = self.o
        k, tokens, turns = o.saturation_clients, o.saturation_tokens, o.saturation_turns
        url = self.fake.url + "/v1/chat/completions"
        async with httpx.AsyncClient(timeout=TURN_TIMEOUT) as client:
            directs = await asyncio.gather(
                *(
                    direct_stream(client, url, self._prompt(f"Saturate {i}", tokens, 0))
                    for i in range(k)
                )
            )
        d_first = min(d.first_at for d in directs if d.first_at)
        d_rate = sum(d.deltas for d in directs) / (max(d.final_at for d in directs) - d_first)

        async def ws_client(ws: Any, i: int) -> list[Answer]:
            return [
                await ws_turn(ws, self._prompt(f"Saturate {i}.{t}", tokens, 0))
                for t in range(turns)
            ]

        answers, usage = await self._ws_clients(k, ws_client)
        bad, relayed = await self._check(answers)
        if bad:
            self.results.failures.append(
                f"saturation: {bad} answer(s) differ from the saved text: {self.mismatches[-bad:]}"
            )
        return {
            "streams": k,
            "answers": len(answers),
            "deltas": relayed,
            "deltas_per_s": relayed / relaying_time(answers),
            "deltas_per_app_cpu_s": relayed / usage["app_cpu_s"] if usage["app_cpu_s"] else 0,
            "fake_alone_deltas_per_s": d_rate,
            "frames_per_answer": sum(a.delta_frames for a in answers) / len(answers),
            "machine_cpu_pct": usage["machine_cpu_pct"],
        }

    async def memory(self) -> dict[str, float]:
        o = self.o
        out: dict[str, float] = {}
        pid = self.app.pid
        # Idle sockets: a page left open. Several tabs per conversation, as people do.
        pool = self.fixture.take(min(o.idle_sockets, 500))
        targets = [pool[i % len(pool)] for i in range(o.idle_sockets)]
        await asyncio.sleep(0.5)
        base = rss_bytes(pid) or 0
        sockets = await self._open(targets)
        await asyncio.sleep(1.0)
        out["idle_sockets"] = len(sockets)
        out["kb_per_idle_socket"] = ((rss_bytes(pid) or 0) - base) / len(sockets) / 1024
        await self._close(sockets)
        await asyncio.sleep(0.5)

        # Active runs: each a socket plus a run streaming slowly from the endpoint.
        sockets = await self._open(self.fixture.take(o.active_runs))
        await asyncio.sleep(1.0)
        base = rss_bytes(pid) or 0
        started = [asyncio.Event() for _ in sockets]
        prompt = self._prompt("Keep going", 500, 10)
        tasks = [
            asyncio.create_task(ws_turn(ws, prompt, on_first=event.set))
            for ws, event in zip(sockets, started, strict=True)
        ]
        async with asyncio.timeout(60):
            await asyncio.gather(*(e.wait() for e in started))
        await asyncio.sleep(1.5)
        out["active_runs"] = len(sockets)
        out["kb_per_active_run"] = ((rss_bytes(pid) or 0) - base) / len(sockets) / 1024
        for ws in sockets:
            await ws.send(STOP_FRAME)
        answers = await asyncio.gather(*tasks)
        out["stopped"] = sum(a.status == "stopped" for a in answers)
        await self._close(sockets)
        if out["stopped"] != len(sockets):
            self.results.failures.append(
                f"memory: only {out['stopped']:.0f} of {len(sockets)} runs ended 'stopped'"
            )
        return out

    async def page(self) -> dict[str, float]:
        conversation = await database_sync_to_async(_long_conversation)(
            self.fixture, self.o.page_messages
        )
        url = f"{self.app.url}/c/{conversation.pk}/"
        cookies = {settings.SESSION_COOKIE_NAME: self.fixture.session_key}
        times = []
        async with httpx.AsyncClient(cookies=cookies, timeout=60) as client:
            for i in range(6):
                started = time.perf_counter()
                response = await client.get(url)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                if i:  # the first one warms the template cache
                    times.append(elapsed)
        return {
            "messages": self.o.page_messages,
            "median_ms": ms(statistics.median(times)),
            "kb": len(response.content) / 1024,
        }

    async def run(self) -> Results:
        o, r = self.o, self.results
        self.log("warming up…")
        await self.warm_up()
        self.log(f"memory: {o.idle_sockets} idle sockets, then {o.active_runs} active runs…")
        r.memory = await self.memory()
        for c in o.concurrency:
            turns = max(o.turns, math.ceil(o.min_answers / c))
            self.log(f"C={c}: {c} clients × {turns} turns, direct then through the app…")
            r.levels.append(await self.level(c))
        self.log(f"saturation: {o.saturation_clients} streams at full speed…")
        r.saturation = await self.saturation()
        self.log(f"page: a conversation of {o.page_messages} messages…")
        r.page = await self.page()
        self.log("markdown while streaming: the same answers, in this process…")
        r.markdown = markdown_cost(o)
        return r


def markdown_cost(o: Options) -> dict[str, float]:
    """CPU of markdown while streaming (chat.mdstream: splitting, rendering each block
    once) next to the final render, per answer: the benchmark's answers, fed in the
    pieces one frame carries at its rate, then a ~100 KB answer in 3,000-token-a-second
    frames. Measured here, not in the app process, so it is this cost alone."""

    from chat import frames as chat_frames
    from chat.fake_upstream import generate_reply, tokenize
    from chat.mdstream import MarkdownStream
    from chat.render import render_markdown

    def one(text: str, per_frame: int) -> tuple[float, float, int, int, int]:
        tokens = tokenize(text)
        md = MarkdownStream()
        size = frames = 0
        streaming = 0.0
        for i in range(0, len(tokens), per_frame):
            chunk = "".join(tokens[i : i + per_frame])
            started = time.process_time()
            pending = md.feed(chunk)
            commit = pending.render() if pending is not None else None
            streaming += time.process_time() - started
            frame = (
                chat_frames.block(1, "t", chunk, commit.event())
                if commit
                else chat_frames.delta(1, "t", chunk)
            )
            size += len(frame.encode())
            frames += 1
        started = time.process_time()
        render_markdown(text)
        final = time.process_time() - started
        return streaming, final, size, frames, md.parsed_chars

    per_frame = max(1, round(o.rate * settings.RUN_FRAME_INTERVAL)) if o.rate > 0 else 8
    texts = [generate_reply(f"Bench turn {k}", tokens=o.tokens) for k in range(20)]
    for text in texts[:3]:
        one(text, per_frame)  # warm up: imports, lexers, caches
    runs = [one(text, per_frame) for text in texts]
    text_bytes = sum(len(t.encode()) for t in texts)
    long_text = generate_reply("A long one", tokens=18_000)
    long = one(long_text, round(3000 * settings.RUN_FRAME_INTERVAL))
    return {
        "answers": len(texts),
        "streaming_ms": 1000 * sum(r[0] for r in runs) / len(runs),
        "final_ms": 1000 * sum(r[1] for r in runs) / len(runs),
        "ratio": sum(r[2] for r in runs) / text_bytes,
        "overhead_per_frame": (sum(r[2] for r in runs) - text_bytes) / sum(r[3] for r in runs),
        "parsed": sum(r[4] for r in runs) / sum(len(t) for t in texts),
        "long_kb": len(long_text.encode()) / 1024,
        "long_streaming_ms": 1000 * long[0],
        "long_final_ms": 1000 * long[1],
        "long_ratio": long[2] / len(long_text.encode()),
    }


def _long_conversation(fixture: harness.Fixture, count: int) -> Any:
    """A conversation of ``count`` saved messages (half questions, half rendered answers)."""
    from chat.fake_upstream import generate_reply
    from chat.render import render_markdown

    (conversation,) = fixture.take(1)
    lane = conversation.lanes.get()
    replies = [generate_reply(f"Question {i}", tokens=150) for i in range(8)]
    rendered = [render_markdown(text) for text in replies]
    messages = []
    for turn in range(1, count // 2 + 1):
        messages.append(
            Message(conversation=conversation, turn=turn, role="user", content=f"Question {turn}?")
        )
        messages.append(
            Message(
                conversation=conversation,
                lane=lane,
                turn=turn,
                role="assistant",
                model="demo",
                content=replies[turn % 8],
                rendered=rendered[turn % 8],
                finish_reason="stop",
                usage={"prompt_tokens": 3, "completion_tokens": 150, "total_tokens": 153},
                metrics={"ttft_ms": 120, "total_ms": 2400, "tokens_per_s": 62.5},
            )
        )
    Message.objects.bulk_create(messages)
    return conversation


def describe_machine() -> str:
    import platform

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GB"
    load = ""
    with contextlib.suppress(OSError):
        load = ", load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{os.cpu_count()} CPU ({model or platform.machine()}){memory}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}{load}"
    )


def describe_setup() -> str:
    from django.db import connection

    db = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite (WAL)"
    layer = "Redis channel layer" if settings.REDIS_URL else "in-memory channel layer"
    return (
        f"one daphne process, {db}, {layer}, frame interval "
        f"{settings.RUN_FRAME_INTERVAL * 1000:.0f} ms, save interval {settings.RUN_SAVE_INTERVAL} s"
    )


def run_bench(
    options: Options, *, log: Callable[[str], None] = print, workdir: Path | None = None
) -> Results:
    """Start the fake endpoint and one app process on the current database, measure,
    stop them. The caller owns the database (see harness.throwaway_database)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    machine = describe_machine()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relaybench-")))
        fake = harness.start_fake(workdir)
        stack.callback(fake.stop)
        fixture = harness.make_fixture(fake.url, options.conversations_needed())
        extra = {"CHANNELS_PREFIX": f"relaybench{os.getpid()}"} if settings.REDIS_URL else {}
        app = harness.start_app(harness.app_env(workdir, **extra), workdir)
        stack.callback(app.stop)
        bench = Bench(options, fake, app, fixture)
        bench.log = log
        try:
            results = asyncio.run(bench.run())
        except Exception:
            log("app log:\n" + app.log_tail() + "\nfake log:\n" + fake.log_tail())
            raise
        results.machine = (
            f"{machine} (at the start; {describe_machine().rsplit(', ', 1)[-1]} at the end)"
        )
        results.setup = describe_setup()
        return results
