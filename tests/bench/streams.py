"""One answer, read over the conversation socket or straight from the endpoint, and
the statistics the benchmark draws from many of them."""

from __future__ import annotations

import asyncio
import html
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.bench.wire import DELTA, final_status, is_final, send_frame

TURN_TIMEOUT = 120.0
# In the fake's SSE: a chunk carrying a piece of answer text (the role chunk has "role").
CONTENT_MARK = b'"delta":{"content":"'
FINAL_ID = re.compile(r'id="m-(\d+)"')


@dataclass
class Answer:
    sent_at: float
    message_id: int | None = None
    first_at: float | None = None  # first frame with answer text
    last_delta_at: float | None = None
    final_at: float | None = None
    frames: int = 0
    bytes: int = 0
    delta_frames: int = 0
    delta_bytes: int = 0
    status: str | None = None
    text: str = ""

    @property
    def ttft(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.sent_at

    @property
    def total(self) -> float | None:
        return None if self.final_at is None else self.final_at - self.sent_at


async def ws_turn(ws: Any, prompt: str, *, on_first: Callable[[], None] | None = None) -> Answer:
    """Send one turn and read frames up to the answer's final render."""
    answer = Answer(sent_at=time.perf_counter())
    await ws.send(send_frame(prompt))
    parts: list[str] = []
    async with asyncio.timeout(TURN_TIMEOUT):
        while True:
            frame = await ws.recv()
            now = time.perf_counter()
            size = len(frame) if frame.isascii() else len(frame.encode())
            answer.frames += 1
            answer.bytes += size
            if frame.startswith("<span "):
                answer.delta_frames += 1
                answer.delta_bytes += size
                answer.last_delta_at = now
                for kind, message_id, mode, body in DELTA.findall(frame):
                    if kind != "t":
                        continue
                    if mode == "innerHTML":
                        parts = [body]
                    else:
                        parts.append(body)
                    if body and answer.first_at is None:
                        answer.first_at = now
                        answer.message_id = int(message_id)
                        if on_first is not None:
                            on_first()
            elif is_final(frame):
                answer.final_at = now
                answer.status = final_status(frame)
                found = FINAL_ID.search(frame)
                if found:
                    answer.message_id = int(found.group(1))
                break
    answer.text = html.unescape("".join(parts))
    return answer


@dataclass
class Direct:
    sent_at: float
    first_at: float | None = None
    final_at: float = 0.0
    deltas: int = 0

    @property
    def ttft(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.sent_at


def chat_body(prompt: str) -> dict[str, Any]:
    """What the app sends for a first turn (see request_body.request_body_build)."""
    return {
        "model": "demo",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def direct_stream(client: httpx.AsyncClient, url: str, prompt: str) -> Direct:
    """The same stream read straight from the endpoint, as cheaply as possible."""
    result = Direct(sent_at=time.perf_counter())
    tail = b""
    async with client.stream("POST", url, json=chat_body(prompt)) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            window = tail + chunk
            found = window.count(CONTENT_MARK)
            if found and result.first_at is None:
                result.first_at = time.perf_counter()
            result.deltas += found
            tail = window[-(len(CONTENT_MARK) - 1) :]
    result.final_at = time.perf_counter()
    return result


def percentile(values: Iterable[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float) -> float:
    return round(value * 1000, 2)


def relaying_time(answers: list[Answer]) -> float:
    """Seconds during which at least one answer was between its first and its last text
    frame (the union of those windows): the time spent relaying, without the gaps where
    a turn was being set up or an endpoint was planning its reply."""
    windows = sorted(
        (a.first_at, max(a.last_delta_at or a.first_at, a.first_at))
        for a in answers
        if a.first_at is not None
    )
    total, start, end = 0.0, None, None
    for lo, hi in windows:
        if end is None or lo > end:
            if end is not None:
                total += end - start
            start, end = lo, hi
        else:
            end = max(end, hi)
    if end is not None:
        total += end - start
    if total <= 0:  # each answer came in one frame: count up to the final renders
        total = max(a.final_at or 0 for a in answers) - min(a.sent_at for a in answers)
    return total
