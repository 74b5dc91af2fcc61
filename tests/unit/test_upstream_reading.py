"""The bounded reading layer's parts (chat/upstream/reading.py): line splitting and
inflating in bounded steps. The hostile endpoints themselves are in tests/faults."""

from __future__ import annotations

import zlib

import pytest
from httpx_sse._decoders import SSELineDecoder

from chat.upstream.reading import PIECE, _Inflater, _Lines

STREAM = "data: a\r\n\r\ndata: é€😀\rdata: b\n\n: keep-alive\r\rdata: c\r\n".encode()


def httpx_sse_lines(data: bytes) -> list[str]:
    decoder = SSELineDecoder()
    return [*decoder.decode(data.decode()), *decoder.flush()]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_lines_match_httpx_sse_wherever_the_chunks_are_cut(cut):
    lines = _Lines()
    got = [*lines.feed(STREAM[:cut]), *lines.feed(STREAM[cut:]), *lines.flush()]
    assert got == httpx_sse_lines(STREAM)


def test_lines_fed_one_byte_at_a_time_keep_one_pending_buffer():
    lines = _Lines()
    got = []
    for i in range(len(STREAM)):
        got += lines.feed(STREAM[i : i + 1])
    assert [*got, *lines.flush()] == httpx_sse_lines(STREAM)
    for byte in b"A" * 1000:
        lines.feed(bytes([byte]))
    assert len(lines.pending) == 1000


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", lambda d: zlib.compress(d, wbits=16 + zlib.MAX_WBITS)),
        ("deflate", zlib.compress),  # zlib-wrapped, as the standard says
        ("deflate", lambda d: zlib.compress(d, wbits=-zlib.MAX_WBITS)),  # raw, as some send
    ],
)
def test_inflating_never_yields_more_than_a_piece_at_a_time(coding, pack):
    data = b"data: " + b"A" * (5 * PIECE + 123)
    inflater = _Inflater(coding)
    pieces = list(inflater.pieces(pack(data)))
    assert max(map(len, pieces)) <= PIECE
    assert b"".join(pieces) + inflater.tail() == data
