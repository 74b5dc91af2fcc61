"""A tiny HTTP/1.1 server on 127.0.0.1 that can misbehave at the byte level.

Each test gives it a handler ``async (request, conn) -> bool`` (True keeps the connection
for another request). ``conn`` writes raw bytes, so a handler can stall before the
headers, stop mid-chunk, close without the last chunk or reset the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio

REASONS = {
    200: "OK",
    302: "Found",
    307: "Temporary Redirect",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def last_user_text(self) -> str:
        obj = self.json
        if not isinstance(obj, dict):
            return ""
        messages = obj.get("messages") or []
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content") or "")
        return str(obj.get("prompt") or "")


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chunked = False

    async def raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(
        self, status: int, headers: dict[str, str] | None = None, *, length: int | None = None
    ) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if length is None:
            self.chunked = True
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {length}")
        await self.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def chunk(self, data: bytes) -> None:
        assert self.chunked
        if data:
            await self.raw(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    async def end(self) -> None:
        await self.raw(b"0\r\n\r\n")

    async def respond(
        self, status: int, body: bytes | str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        await self.head(status, headers, length=len(data))
        await self.raw(data)

    async def json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        await self.respond(
            status, json.dumps(obj), {"Content-Type": "application/json", **(headers or {})}
        )

    async def sse_head(self) -> None:
        await self.head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    async def sse(self, obj: Any) -> None:
        data = obj if isinstance(obj, str) else json.dumps(obj)
        await self.chunk(b"data: " + data.encode() + b"\n\n")

    async def read_by_client(self) -> None:
        """Wait until the client has read every byte sent so far: none left in this
        side's write buffer, none unacknowledged, none unread in the client's receive
        queue. Then a reset cannot discard text the client has not read yet, however
        slow the machine. Linux: /proc/net/tcp's tx_queue and rx_queue (the client is a
        socket of this same process, so of this network namespace)."""
        server = _proc_address(self.writer.get_extra_info("sockname"))
        client = _proc_address(self.writer.get_extra_info("peername"))
        async with asyncio.timeout(60):  # a safety net only
            while self.writer.transport.get_write_buffer_size() or any(_queued(server, client)):
                await asyncio.sleep(0.005)

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0) instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def silence(self) -> None:
        """Say nothing until the client goes away."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(4096):
                pass


Handler = Callable[[Request, Conn], Awaitable[bool]]


def _proc_address(address: tuple[str, int]) -> str:
    """An IPv4 address as /proc/net/tcp writes it (host byte order, hex)."""
    host, port = address[:2]
    return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"


def _queued(server: str, client: str) -> tuple[int, int]:
    """Bytes the server sent that the client has not acknowledged, and bytes the client
    received that its application has not read yet."""
    sent = unread = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            tx, rx = (int(n, 16) for n in fields[4].split(":"))
            if (fields[1], fields[2]) == (server, client):
                sent = tx
            elif (fields[1], fields[2]) == (client, server):
                unread = rx
    assert sent is not None and unread is not None, "both ends are in /proc/net/tcp"
    return sent, unread


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "model": "raw",
        "choices": [
            {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        ],
    }


@dataclass
class RawServer:
    handler: Handler | None = None
    host: str = "127.0.0.1"
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    open: set[asyncio.StreamWriter] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, port: int = 0) -> RawServer:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def owns(self, task: asyncio.Task) -> bool:
        return task in self._tasks

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self.open):
            writer.transport.abort()
        # Aborted sockets end the handlers (EOF); cancel only what still hangs on.
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open.add(writer)
        conn = Conn(reader, writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                conn.chunked = False
                assert self.handler is not None, "RawServer has no handler"
                if not await self.handler(request, conn):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest_asyncio.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    server = await RawServer().start()
    try:
        yield server
    finally:
        await server.close()
