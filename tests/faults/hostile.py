"""Hostile endpoints that attack the reader's memory or timers rather than fail: a gzip
bomb, an endless line, a flood of keep-alives, endless empty deltas.

Each is a raw-server handler. The bomb is compressed as it is made (a few hundred KB for
hundreds of MB inflated), so the server itself stays small and an RSS measurement sees
only what the client does with it.
"""

from __future__ import annotations

import asyncio
import json
import zlib

from .rawserver import Conn, Request, delta

_PIECE = 1024 * 1024


def gzip_bomb(inflated: int, *, prefix: bytes = b"data: ", fill: bytes = b"A") -> bytes:
    """``prefix`` then whole copies of ``fill`` up to about ``inflated`` bytes (no newline
    unless ``fill`` has one), gzip-compressed."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(prefix)]
    block = fill * max(1, _PIECE // len(fill))
    for _ in range(max(1, (inflated - len(prefix)) // len(block))):
        out.append(packer.compress(block))
    out.append(packer.flush())
    return b"".join(out)


def serve_compressed(body: bytes, encoding: str = "gzip", chunk: int = 64 * 1024):
    """An event stream whose (chunked) body is ``body``, labelled ``Content-Encoding``."""

    async def serve(req: Request, conn: Conn) -> bool:
        await conn.head(200, {"Content-Type": "text/event-stream", "Content-Encoding": encoding})
        for start in range(0, len(body), chunk):
            await conn.chunk(body[start : start + chunk])
        await conn.end()
        return True

    return serve


async def _until_gone(conn: Conn, writes) -> None:
    """Keep writing until the client goes away (the stream never ends by itself)."""
    try:
        async for data in writes:
            await conn.chunk(data)
    except (ConnectionError, RuntimeError):
        pass


async def endless_line(req: Request, conn: Conn) -> bool:
    """Partial text, then ``data: AAAA…`` that never ends (no newline, ever)."""
    await conn.sse_head()
    await conn.sse(delta("Partial "))

    async def writes():
        yield b"data: "
        while True:
            yield b"A" * 65536

    await _until_gone(conn, writes())
    return False


async def keepalive_flood(req: Request, conn: Conn) -> bool:
    """Partial text, then nothing but comments and blank keep-alive lines, forever."""
    await conn.sse_head()
    await conn.sse(delta("Partial "))

    async def writes():
        while True:
            yield b":\n\n" * 4096

    await _until_gone(conn, writes())
    return False


async def empty_deltas(req: Request, conn: Conn) -> bool:
    """Partial text, then ``{"choices":[{"delta":{}}]}`` every few ms, forever: events,
    but never any progress of the answer."""
    await conn.sse_head()
    await conn.sse(delta("Partial "))

    async def writes():
        empty = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {}}]}).encode()
        while True:
            await asyncio.sleep(0.005)
            yield empty + b"\n\n"

    await _until_gone(conn, writes())
    return False


async def endless_text(req: Request, conn: Conn) -> bool:
    """``Partial `` then ``tick `` every few ms, forever: progress that never finishes."""
    await conn.sse_head()
    await conn.sse(delta("Partial "))

    async def writes():
        tick = b"data: " + json.dumps(delta("tick ")).encode() + b"\n\n"
        while True:
            await asyncio.sleep(0.005)
            yield tick

    await _until_gone(conn, writes())
    return False
