"""An httpx transport that serves requests from an ASGI app in-process, streaming.

httpx's own ``ASGITransport`` runs the app to completion and buffers the whole body, so a
token stream would arrive in one piece.  Here the app runs in a task and each body message
is handed to the reader as soon as it is sent; closing the response tells the app
``http.disconnect`` and, if it does not stop by itself, cancels it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import httpx

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

# How long a closed response waits for the app to notice http.disconnect before cancelling.
_DISCONNECT_GRACE = 0.5


class ClientDisconnected(OSError):
    """Raised by ``send`` after the reader went away, like a write to a closed socket."""


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        default_port = 443 if url.scheme == "https" else 80
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or default_port),
            "client": self.client,
        }
        exchange = _Exchange(self.app, scope, body)
        return await exchange.start()


class _Exchange(httpx.AsyncByteStream):
    """One request/response; also the response's byte stream."""

    def __init__(self, app: ASGIApp, scope: Scope, body: bytes) -> None:
        self._app = app
        self._scope = scope
        self._body: bytes | None = body
        # Items: ("start", message) | ("body", bytes) | ("end", None) | ("done", None).
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> httpx.Response:
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        self._task.add_done_callback(self._app_done)
        try:
            kind, payload = await self._queue.get()
        except BaseException:
            await self.aclose()
            raise
        if kind == "start":
            return httpx.Response(
                payload["status"], headers=payload.get("headers", []), stream=self
            )
        # The app returned (or crashed) without a response; a real server would send a 500.
        return httpx.Response(
            500, headers={"content-type": "text/plain"}, content=b"Internal Server Error"
        )

    def _app_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("in-process ASGI app failed", exc_info=task.exception())
        self._queue.put_nowait(("done", None))

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._gone.is_set():
            raise ClientDisconnected("the client closed the response")
        kind = message["type"]
        if kind == "http.response.start":
            self._queue.put_nowait(("start", message))
        elif kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                self._queue.put_nowait(("body", bytes(chunk)))
            if not message.get("more_body", False):
                self._queue.put_nowait(("end", None))
            # A socket write would yield; without it a delay-free app could finish before
            # the reader sees its first chunk.
            await asyncio.sleep(0)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            kind, payload = await self._queue.get()
            if kind == "body":
                yield payload
            elif kind == "end":
                return
            elif kind == "done":
                raise httpx.RemoteProtocolError(
                    "the in-process app ended without completing the response body"
                )

    async def aclose(self) -> None:
        self._gone.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait({task}, timeout=_DISCONNECT_GRACE)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
