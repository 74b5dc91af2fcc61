"""An echoed secret split across deltas is redacted before it is kept or broadcast."""

from __future__ import annotations

import random

import pytest

from chat.runs.answer import TextStream
from chat.upstream import REDACTED, Secrets

KEY = "sk-live-0123456789abcdef"
HEADER = "sk-live-01"  # a secret that begins another: the longer one wins where both fit


def _feed(stream: TextStream, pieces: list[str]) -> tuple[str, list[str]]:
    frames = []
    for number, piece in enumerate(pieces):
        stream.append(piece, number)
        if stream.pending:
            frames.append(stream.take_pending()[1])
    stream.flush()
    if stream.pending:
        frames.append(stream.take_pending()[1])
    return stream.text(), frames


def random_pieces(seed: int) -> list[str]:
    """A text with secrets in it, cut at 1 to 25 random places."""
    rng = random.Random(seed)
    text = f"Key {KEY} and {HEADER}X, again {KEY}{KEY}. sk-live (not a secret) sk"
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 25)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize("seed", range(40))
def test_a_secret_split_anywhere_never_reaches_a_frame(seed):
    pieces = random_pieces(seed)
    stream = TextStream(secrets=Secrets([KEY, HEADER]))
    shown, frames = _feed(stream, pieces)
    assert shown == (
        f"Key {REDACTED} and {REDACTED}X, again {REDACTED}{REDACTED}. sk-live (not a secret) sk"
    )
    assert "".join(frames) == shown  # what the pages get adds up to what is saved
    assert not any("0123" in frame or "01X" in frame for frame in frames)
    assert stream.length == len(shown) == stream.sent


def test_one_character_deltas_and_the_raw_lines_they_came_in():
    stream = TextStream(secrets=Secrets([KEY]))
    shown, frames = _feed(stream, list(f"<{KEY}>"))
    assert shown == f"<{REDACTED}>" and "".join(frames) == shown
    # Every character of the secret noted with its delta's raw line (1 .. len(KEY)).
    assert sorted(stream.fragments) == [(n + 1, ch) for n, ch in enumerate(KEY)]


def test_text_that_cannot_begin_a_secret_is_not_held_back():
    stream = TextStream(secrets=Secrets([KEY]))
    stream.append("Hello there, ", 0)
    assert stream.take_pending()[1] == "Hello there, "
    stream.append("look: sk-li", 1)
    assert stream.take_pending()[1] == "look: "  # only the possible start waits
    stream.append("ving room", 2)
    assert stream.take_pending()[1] == "sk-living room"


def test_without_secrets_nothing_is_held():
    stream = TextStream()
    stream.append("sk-live-0", 0)
    assert stream.take_pending()[1] == "sk-live-0"


@pytest.mark.parametrize("seed", range(40))
def test_a_secret_split_anywhere_across_logprob_tokens_is_redacted(seed):
    pieces = random_pieces(seed)
    alternatives = [{"token": "alt", "logprob": -2.0}]
    tokens = [{"token": p, "logprob": -0.1, "top": alternatives} for p in pieces]
    redacted, cut = Secrets([KEY, HEADER]).tokens(tokens)
    assert len(redacted) == len(tokens)  # one entry per token still: the counts hold
    assert "".join(t["token"] for t in redacted) == (
        f"Key {REDACTED} and {REDACTED}X, again {REDACTED}{REDACTED}. sk-live (not a secret) sk"
    )
    # The tokens a secret ran through lose their alternatives; the others keep them.
    for before, after in zip(tokens, redacted, strict=True):
        assert after["top"] == ([] if after["token"] != before["token"] else alternatives)
    # What was cut out, token by token, spells the secrets.
    assert "".join(piece for _, piece in cut) == KEY + HEADER + KEY + KEY


def test_a_secret_in_a_logprob_alternative_is_redacted():
    tokens = [{"token": "a", "logprob": -0.1, "top": [{"token": f"x{KEY}", "logprob": -3.0}]}]
    redacted, cut = Secrets([KEY]).tokens(tokens)
    assert redacted[0]["top"] == [{"token": f"x{REDACTED}", "logprob": -3.0}] and cut == []


def test_the_raw_lines_lose_the_logprob_pieces_and_their_bytes():
    import json

    piece = {"token": "sk-li", "logprob": -0.1, "bytes": list(b"sk-li")}
    other = {"token": "ok", "logprob": -2.0, "bytes": list(b"ok")}
    logprobs = {"content": [{**piece, "top_logprobs": [piece, other]}]}
    chat = {"choices": [{"delta": {"content": "sk-li"}, "logprobs": logprobs}]}
    line = json.loads(Secrets().raw(json.dumps(chat), ["sk-li"]))
    entry = line["choices"][0]["logprobs"]["content"][0]
    assert entry["token"] == REDACTED and entry["bytes"] is None
    assert entry["top_logprobs"][0]["bytes"] is None
    assert entry["top_logprobs"][1] == {"token": "ok", "logprob": -2.0, "bytes": list(b"ok")}
    logprobs = {"tokens": ["sk-li"], "token_logprobs": [-0.1], "top_logprobs": [{"sk-li": -0.1}]}
    legacy = {"choices": [{"text": "sk-li", "logprobs": logprobs}]}
    logprobs = json.loads(Secrets().raw(json.dumps(legacy), ["sk-li"]))["choices"][0]["logprobs"]
    assert logprobs["tokens"] == [REDACTED] and logprobs["top_logprobs"] == [{REDACTED: -0.1}]
