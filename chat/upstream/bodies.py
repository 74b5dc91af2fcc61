"""Reading response bodies (bounded, decoded) and the bounded raw capture for an inspector."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .reading import read_bounded

JSON_BODY_LIMIT = 16 * 1024 * 1024

# Raw capture (``raw=``) for the inspector: at most this many entries and UTF-8 bytes.
RAW_MAX_ENTRIES = 2000

RAW_MAX_BYTES = 1024 * 1024

RAW_TRUNCATED = "… (truncated)"


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` decoded bytes of the body (within ``UPSTREAM_MAX_BYTES``), and
    whether there was more; see ``reading``. Raises ``reading.BodyRefused`` for a
    Content-Encoding that is not read."""
    return await read_bounded(response, limit)


def _decode(raw: bytes, response: httpx.Response) -> str:
    try:
        return raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


Recorder = Callable[[str], None]


class _RawRecorder:
    """Appends what the endpoint sent, as text, to a caller's list for an inspector.

    Bounded: after ``RAW_MAX_ENTRIES`` entries or ``RAW_MAX_BYTES`` (UTF-8) in all it
    appends ``RAW_TRUNCATED`` once and then nothing more; the entry that crosses the byte
    limit is kept up to the limit.
    """

    __slots__ = ("_out", "_entries", "_bytes", "_full")

    def __init__(self, out: list[str]) -> None:
        self._out = out
        self._entries = 0
        self._bytes = 0
        self._full = False

    def __call__(self, text: str) -> None:
        if self._full:
            return
        if self._entries >= RAW_MAX_ENTRIES:
            self._stop()
            return
        # Called for every chunk of a stream: ASCII (nearly every chunk: JSON escapes
        # the rest by default) is measured without encoding it.
        size = len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))
        room = RAW_MAX_BYTES - self._bytes
        if size > room:
            if room > 0:
                encoded = text.encode("utf-8", errors="surrogatepass")
                self._out.append(encoded[:room].decode("utf-8", errors="ignore"))
            self._stop()
            return
        self._out.append(text)
        self._entries += 1
        self._bytes += size

    def _stop(self) -> None:
        self._out.append(RAW_TRUNCATED)
        self._full = True


def _recorder(raw: list[str] | None) -> Recorder | None:
    return None if raw is None else _RawRecorder(raw)
