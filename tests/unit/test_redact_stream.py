"""An echoed secret split across deltas is redacted before it is kept or broadcast."""

from __future__ import annotations

import random

import pytest

from chat.runs import REDACTED, _Stream

KEY = "sk-live-0123456789abcdef"
HEADER = "sk-live-01"  # a secret that begins another: the longer one wins where both fit


def _feed(stream: _Stream, pieces: list[str]) -> tuple[str, list[str]]:
    frames = []
    for number, piece in enumerate(pieces):
        stream.append(piece, number)
        if stream.pending:
            frames.append(stream.take_pending()[1])
    stream.flush()
    if stream.pending:
        frames.append(stream.take_pending()[1])
    return stream.text(), frames


@pytest.mark.parametrize("seed", range(40))
def test_a_secret_split_anywhere_never_reaches_a_frame(seed):
    rng = random.Random(seed)
    text = f"Key {KEY} and {HEADER}X, again {KEY}{KEY}. sk-live (not a secret) sk"
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 25)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    stream = _Stream(secrets=(KEY, HEADER))
    shown, frames = _feed(stream, pieces)
    assert shown == (
        f"Key {REDACTED} and {REDACTED}X, again {REDACTED}{REDACTED}. sk-live (not a secret) sk"
    )
    assert "".join(frames) == shown  # what the pages get adds up to what is saved
    assert not any("0123" in frame or "01X" in frame for frame in frames)
    assert stream.length == len(shown) == stream.sent


def test_one_character_deltas_and_the_raw_lines_they_came_in():
    stream = _Stream(secrets=(KEY,))
    shown, frames = _feed(stream, list(f"<{KEY}>"))
    assert shown == f"<{REDACTED}>" and "".join(frames) == shown
    # Every character of the secret noted with its delta's raw line (1 .. len(KEY)).
    assert sorted(stream.fragments) == [(n + 1, ch) for n, ch in enumerate(KEY)]


def test_text_that_cannot_begin_a_secret_is_not_held_back():
    stream = _Stream(secrets=(KEY,))
    stream.append("Hello there, ", 0)
    assert stream.take_pending()[1] == "Hello there, "
    stream.append("look: sk-li", 1)
    assert stream.take_pending()[1] == "look: "  # only the possible start waits
    stream.append("ving room", 2)
    assert stream.take_pending()[1] == "sk-living room"


def test_without_secrets_nothing_is_held():
    stream = _Stream()
    stream.append("sk-live-0", 0)
    assert stream.take_pending()[1] == "sk-live-0"
