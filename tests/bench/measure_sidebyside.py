"""The side-by-side benchmark's measurements (``python -m tests.bench.sidebyside`` prints
them): the same paced stream from the fake endpoint read straight from it, through nginx,
through a LiteLLM proxy (HTTP, in this process) and through the app (real turns over the
conversation websocket), the four paths one after the other in each round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.bench.peers import LITELLM_KEY
from tests.bench.procstat import cpu_seconds
from tests.bench.sidebyside_report import (
    LABELS,
    PATHS,
    LevelStats,
    Options,
    PathRaw,
    SideBySide,
    level_stats,
    rotation,
    turns_per_client,
)
from tests.bench.streams import chat_body, ws_turn
from tests.bench.wire import fake_prompt, ws_connect

CONNECT_PARALLEL = 20
TURN_TIMEOUT = 120.0  # per turn, as ws_turn's (streams.TURN_TIMEOUT)


@dataclass
class HttpAnswer:
    sent_at: float
    first_at: float | None = None
    final_at: float = 0.0
    text: str = ""


def _content(data: bytes) -> str:
    """The answer text one SSE data line carries (any serialisation, LiteLLM's too)."""
    if b'"content"' not in data:
        return ""
    try:
        choices = json.loads(data).get("choices") or []
    except ValueError:
        return ""
    delta = (choices[0].get("delta") or {}) if choices else {}
    return delta.get("content") or ""


async def http_turn(client: Any, url: str, prompt: str, headers: dict[str, str]) -> HttpAnswer:
    """One streamed completion over HTTP: TTFT at the first chunk with text."""
    answer = HttpAnswer(sent_at=time.perf_counter())
    parts: list[str] = []
    pending = b""
    async with client.stream("POST", url, json=chat_body(prompt), headers=headers) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if line.startswith(b"data:") and (text := _content(line[5:])):
                    if answer.first_at is None:
                        answer.first_at = time.perf_counter()
                    parts.append(text)
    answer.final_at = time.perf_counter()
    answer.text = "".join(parts)
    return answer


class Runner:
    def __init__(self, o: Options, fake, nginx, litellm, apps, app_url: str, fixture, check):
        self.o = o
        self.fake, self.nginx, self.litellm, self.apps = fake, nginx, litellm, apps
        self.app_url = app_url
        self.fixture = fixture
        self.check = check  # measure_relay.Bench: compares the app's answers with the saved
        self.headers = {"Authorization": f"Bearer {LITELLM_KEY}"}
        self.urls = {
            "direct": fake.url + "/v1/chat/completions",
            "nginx": nginx.url + "/v1/chat/completions",
            "litellm": litellm.url + "/v1/chat/completions",
        }
        self.expected: dict[str, str] = {}
        self.log: Callable[[str], None] = print

    def prompt(self, k: int, tokens: int | None = None, rate: float | None = None) -> str:
        tokens = self.o.tokens if tokens is None else tokens
        rate = self.o.rate if rate is None else rate
        return fake_prompt(f"Bench turn {k}", tokens=tokens, tps=rate, ttft_ms=0)

    def relay_pids(self, path: str) -> list[int]:
        if path == "app":
            return [a.pid for a in self.apps]
        if path == "direct":
            return []
        return getattr(self, path).relay_pids()

    async def _measured(self, path: str, body: Awaitable[Any], raw: PathRaw) -> None:
        """Await ``body``, adding its wall time and CPU (relaying processes, the fake
        endpoint, this process) to ``raw``."""
        pids = [*self.relay_pids(path)]
        fake = self.fake.pid

        def sample() -> tuple[float, float, float, float]:
            relay = sum(cpu_seconds(p) or 0.0 for p in pids)
            return time.perf_counter(), relay, cpu_seconds(fake) or 0.0, time.process_time()

        before = sample()
        await body
        wall, relay, fake_cpu, client = (b - a for a, b in zip(before, sample(), strict=True))
        raw.wall_s += wall
        raw.relay_cpu_s += relay
        raw.fake_cpu_s += fake_cpu
        raw.client_cpu_s += client

    def _spread(self, c: int) -> float:
        return (self.o.tokens / self.o.rate if self.o.rate > 0 else 0.5) / c

    async def http_path(self, path: str, client: Any, c: int, turns: int) -> PathRaw:
        raw = PathRaw()
        spread = self._spread(c)

        async def one(i: int) -> None:
            await asyncio.sleep(i * spread)
            for k in range(turns):
                prompt = self.prompt(k)
                try:
                    async with asyncio.timeout(TURN_TIMEOUT):
                        got = await http_turn(client, self.urls[path], prompt, self.headers)
                except (TimeoutError, httpx.TimeoutException):
                    raw.timeouts += 1
                    continue
                except Exception as exc:  # reported, not raised: a peer may fail under load
                    raw.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                if got.text != self.expected[prompt]:
                    want = len(self.expected[prompt])
                    raw.mismatches.append(f"{path}: streamed {len(got.text)} chars, direct {want}")
                raw.total.append(got.final_at - got.sent_at)
                if got.first_at is not None:
                    raw.ttft.append(got.first_at - got.sent_at)

        await self._measured(path, asyncio.gather(*(one(i) for i in range(c))), raw)
        return raw

    async def _open(self, count: int) -> list[Any]:
        gate = asyncio.Semaphore(CONNECT_PARALLEL)
        session = self.fixture.session_key

        async def one(conversation: Any) -> Any:
            async with gate:
                return await ws_connect(self.app_url, conversation.pk, session)

        return list(await asyncio.gather(*(one(cv) for cv in self.fixture.take(count))))

    async def app_path(self, c: int, turns: int) -> PathRaw:
        """C clients over websockets; every turn on a fresh conversation (a first turn,
        the body the HTTP paths send), its socket opened before the clock starts."""
        raw = PathRaw()
        sockets = await self._open(c * turns)
        await asyncio.sleep(0.2)
        spread = self._spread(c)
        answers: list[Any] = []

        async def one(i: int) -> None:
            await asyncio.sleep(i * spread)
            for k in range(turns):
                prompt = self.prompt(k)
                try:
                    answer = await ws_turn(sockets[i * turns + k], prompt)
                except TimeoutError:
                    raw.timeouts += 1
                    continue
                except Exception as exc:
                    raw.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                answers.append(answer)
                if answer.status != "complete":
                    raw.errors.append(f"answer ended {answer.status!r}")
                elif answer.text != self.expected[prompt]:
                    raw.mismatches.append(
                        f"app: streamed {len(answer.text)} chars, direct "
                        f"{len(self.expected[prompt])}"
                    )
                raw.total.append(answer.total)
                if answer.ttft is not None:
                    raw.ttft.append(answer.ttft)

        try:
            await self._measured("app", asyncio.gather(*(one(i) for i in range(c))), raw)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        before = len(self.check.mismatches)
        await self.check._check(answers)
        raw.mismatches += [f"app: {m}" for m in self.check.mismatches[before:]]
        return raw

    async def warm_up(self) -> None:
        """A few unmeasured turns on every path (LiteLLM's first requests import a lot),
        and the text of every prompt the levels send, read straight from the endpoint."""
        async with httpx.AsyncClient(timeout=TURN_TIMEOUT) as client:
            for url in self.urls.values():
                for k in range(3):
                    await http_turn(client, url, self.prompt(k, 20, 0), self.headers)
            (ws,) = await self._open(1)
            await ws_turn(ws, self.prompt(0, 20, 0))
            await ws.close()
            most = max(turns_per_client(c, self.o.rounds, self.o.min_answers)
                       for c in self.o.concurrency)  # fmt: skip
            prompts = [self.prompt(k) for k in range(most)]
            got = await asyncio.gather(
                *(http_turn(client, self.urls["direct"], p, self.headers) for p in prompts)
            )
        self.expected = {p: a.text for p, a in zip(prompts, got, strict=True)}

    async def level(self, c: int) -> tuple[LevelStats, dict[str, PathRaw]]:
        o = self.o
        turns = turns_per_client(c, o.rounds, o.min_answers)
        pooled = {path: PathRaw() for path in PATHS}
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        timeout = httpx.Timeout(TURN_TIMEOUT, connect=30)
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                path: await stack.enter_async_context(
                    httpx.AsyncClient(limits=limits, timeout=timeout)
                )
                for path in self.urls
            }
            for k in range(o.rounds):
                for path in rotation(k):
                    started = time.perf_counter()
                    if path == "app":
                        raw = await self.app_path(c, turns)
                    else:
                        raw = await self.http_path(path, clients[path], c, turns)
                    pooled[path].add(raw)
                    failed = raw.timeouts + len(raw.errors)
                    self.log(
                        f"C={c} round {k + 1}/{o.rounds} {path}: {raw.answers} answers"
                        + (f", {failed} failed" if failed else "")
                        + f" in {time.perf_counter() - started:.1f} s"
                    )
                    await asyncio.sleep(0.3)
        return level_stats(c, o.rounds, turns, pooled), pooled

    async def run(self, results: SideBySide) -> None:
        self.log("warming up every path…")
        await self.warm_up()
        for c in self.o.concurrency:
            turns = turns_per_client(c, self.o.rounds, self.o.min_answers)
            self.log(f"C={c}: {self.o.rounds} round(s) × {c} client(s) × {turns} turn(s)…")
            level, pooled = await self.level(c)
            results.levels.append(level)
            for path, raw in pooled.items():
                where = f"C={c} {LABELS[path]}"
                if raw.mismatches:
                    results.failures.append(
                        f"{where}: {len(raw.mismatches)} answer(s) differ: {raw.mismatches[:3]}"
                    )
                failed = raw.timeouts + len(raw.errors)
                if not failed:
                    continue
                what = f"{where}: {raw.timeouts} turn(s) timed out after {TURN_TIMEOUT:.0f} s"
                if raw.errors:
                    what += f", {len(raw.errors)} failed (first: {raw.errors[0]})"
                if path in ("direct", "app"):
                    results.failures.append(what)
                else:
                    results.notes.append(what)
