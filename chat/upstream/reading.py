"""Every byte read from an endpoint, bounded: decoding, SSE lines and events.

An endpoint is untrusted. httpx inflates each received chunk whole (a 64 KB gzip chunk
can become 64 MB in one call) and httpx-sse buffers a line until its newline, so one
hostile answer could take the process's memory. Here:

- only ``gzip`` and ``deflate`` are asked for (``ACCEPT_ENCODING``), and inflated at most
  ``PIECE`` bytes at a time from ``aiter_raw()``; any other coding is refused;
- an answer's inflated bytes are capped (``UPSTREAM_MAX_BYTES``);
- a line, and the bytes read without any progress of the answer (an endless line, a
  flood of keep-alive comments or empty events), are capped
  (``UPSTREAM_MAX_EVENT_BYTES``).

Past a cap the read ends with ``BodyRefused``, whose ``error`` the caller shows.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
from django.conf import settings
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder

from .events import UpstreamError

ACCEPT_ENCODING = "gzip, deflate"

# The most bytes inflated by one call: what one step of a read may add to memory.
PIECE = 64 * 1024

_MB = 2**20


class BodyRefused(Exception):
    """An endpoint's body passed a bound, or cannot be read safely; ``error`` says why."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def max_bytes() -> int:
    return settings.UPSTREAM_MAX_BYTES


def max_event_bytes() -> int:
    return settings.UPSTREAM_MAX_EVENT_BYTES


def _size(n: int) -> str:
    return f"{n / _MB:g} MB" if n >= _MB else f"{n / 1024:g} KB"


def _refused(message: str) -> BodyRefused:
    return BodyRefused(UpstreamError(message=message, type="response_too_large"))


class _Inflater:
    """gzip or deflate, never more than ``PIECE`` bytes out per step (``max_length``;
    the input not yet used waits in ``unconsumed_tail``, at most one received chunk)."""

    __slots__ = ("_z", "_deflate", "_first")

    def __init__(self, coding: str) -> None:
        self._deflate = coding == "deflate"
        self._first = True
        self._z = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else 16 + zlib.MAX_WBITS)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        while data and not self._z.eof:
            try:
                out = self._z.decompress(data, PIECE)
            except zlib.error as exc:
                if self._deflate and self._first:
                    # "deflate" is zlib-wrapped by the standard, raw by some servers (as httpx).
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._first = False
                    continue
                message = f"The endpoint's compressed body is corrupt: {exc}"
                raise httpx.DecodingError(message) from None
            self._first = False
            data = self._z.unconsumed_tail
            if out:
                yield out

    def tail(self) -> bytes:
        return self._z.flush(PIECE) if not self._z.eof else b""


def _inflater(response: httpx.Response) -> _Inflater | None:
    """The decoder for the response's Content-Encoding; None for identity."""
    header = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if codings[0] == "deflate" else "gzip")
    raise BodyRefused(
        UpstreamError(
            message=f"The endpoint answered with Content-Encoding: {header[:100]}, "
            f"which is not read here (only {ACCEPT_ENCODING} are)",
            status=response.status_code,
            type="unsupported_encoding",
        )
    )


async def aiter_decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body, decoded, in pieces of at most ``PIECE`` bytes when it was compressed
    (an identity chunk is what the network gave, already in memory)."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        # Read (and decoded) already: an in-memory response (a test's MockTransport), never
        # one from the network, which the client streams.
        for start in range(0, len(content), PIECE):
            yield content[start : start + PIECE]
        return
    inflater = _inflater(response)
    async for chunk in response.aiter_raw():
        if inflater is None:
            yield chunk
        else:
            for piece in inflater.pieces(chunk):
                yield piece
    if inflater is not None and (rest := inflater.tail()):
        yield rest


def body_limit(limit: int) -> int:
    """``limit`` for a whole body read, within the answer's cap."""
    return min(limit, max_bytes())


async def read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``body_limit(limit)`` decoded bytes of the body, and whether there was more;
    nothing past the limit is inflated."""
    limit = body_limit(limit)
    buf = bytearray()
    async for piece in aiter_decoded(response):
        buf += piece
        if len(buf) > limit:
            del buf[limit:]
            return bytes(buf), True
    return bytes(buf), False


class _Lines:
    """SSE lines (``\r\n``, ``\r`` or ``\n``) from bytes. httpx-sse's line decoder keeps a
    list of every fragment of an unfinished line (a hostile 1-byte-chunk line costs ~50
    bytes of objects per byte); here the pending line is one bytearray, and only a chunk
    with a line end looks at it again. Lines are UTF-8, as the SSE standard says."""

    __slots__ = ("pending", "_cr")

    def __init__(self) -> None:
        self.pending = bytearray()
        self._cr = False

    def feed(self, data: bytes) -> list[str]:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if data.endswith(b"\r"):  # maybe the first half of a \r\n: wait for the next chunk
            self._cr = True
            data = data[:-1]
        if b"\n" not in data and b"\r" not in data:
            self.pending += data
            return []
        whole = bytes(self.pending) + data if self.pending else data
        if b"\r" in whole:
            whole = whole.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        head, _, rest = whole.rpartition(b"\n")
        self.pending = bytearray(rest)
        return head.decode("utf-8", errors="replace").split("\n")

    def flush(self) -> list[str]:
        if not self.pending and not self._cr:
            return []
        line = self.pending.decode("utf-8", errors="replace")
        self.pending = bytearray()
        self._cr = False
        return [line]


class EventReader:
    """The SSE events of a response (httpx-sse's event decoder over ``_Lines``), bounded.

    The caller says when an event moved the answer on (``progress``); comments, blank
    keep-alives and events without progress only count towards the cap on bytes read
    without progress."""

    __slots__ = ("_response", "_max", "_max_event", "read", "_progress_at")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._max = max_bytes()
        self._max_event = max_event_bytes()
        self.read = 0  # decoded bytes so far
        self._progress_at = 0

    def progress(self) -> None:
        self._progress_at = self.read

    def _check(self, pending: int) -> None:
        if self.read > self._max:
            raise _refused(
                f"The endpoint's answer passed {_size(self._max)} (UPSTREAM_MAX_BYTES) and "
                "was cut there; the text so far is kept."
            )
        if pending > self._max_event:
            raise _refused(
                f"The endpoint sent a line longer than {_size(self._max_event)} "
                "(UPSTREAM_MAX_EVENT_BYTES); the text so far is kept."
            )
        if self.read - self._progress_at > self._max_event + PIECE:
            # + PIECE: progress is noted at the end of the piece it came in.
            raise _refused(
                f"The endpoint sent {_size(self._max_event)} without any answer (only "
                "keep-alives or empty events; UPSTREAM_MAX_EVENT_BYTES); the text so far "
                "is kept."
            )

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        lines = _Lines()
        sse = SSEDecoder()
        async for piece in aiter_decoded(self._response):
            self.read += len(piece)
            for line in lines.feed(piece):
                event = sse.decode(line)
                if event is not None:
                    yield event
            self._check(len(lines.pending))
        for line in lines.flush():
            event = sse.decode(line)
            if event is not None:
                yield event
