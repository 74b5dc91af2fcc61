"""Made-up, deterministic logprobs: chat-shaped entries and the legacy completions shape."""

from __future__ import annotations

import math
import random
from typing import Any

from .text import _ADJECTIVES, _GLUE, _LINKS, _WORDS

MAX_TOP_LOGPROBS = 20
MAX_LEGACY_LOGPROBS = 5
_ALT_WORDS = tuple(w for w in (*_WORDS, *_ADJECTIVES, *_GLUE, *_LINKS) if " " not in w)
_ALT_PUNCT = (".", ",", ";", ":", "!", "?", " -", ")", "...")
_ALT_BREAKS = ("\n\n", " ", ".", " The", " -")


def _alternatives(token: str, rng: random.Random, count: int) -> list[str]:
    """``count`` plausible other tokens for the place of ``token``, all different."""
    core = token.strip()
    lead = token[: len(token) - len(token.lstrip())]
    if "\n" in token or not core:
        pool: tuple[str, ...] = _ALT_BREAKS
    elif core[0].isalnum() or core[0] == "_":
        pool = tuple(lead + (w.capitalize() if core[0].isupper() else w) for w in _ALT_WORDS)
    else:
        pool = tuple(lead + p.strip() if lead else p for p in _ALT_PUNCT)
    out: list[str] = []
    for _ in range(count * 4):
        if len(out) == count:
            break
        candidate = rng.choice(pool)
        if candidate != token and candidate not in out:
            out.append(candidate)
    while len(out) < count:  # a tiny pool: make up distinct ones
        out.append(f"{lead}{core or '_'}{len(out)}")
    return out


def _lp_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _token_logprobs(token: str, rng: random.Random, top: int) -> dict[str, Any]:
    """A chat-shaped ``logprobs.content`` entry with made-up, deterministic numbers.

    The chosen token is usually the most likely one; about one time in five an
    alternative is more likely (only visible when ``top`` > 0).
    """
    if rng.random() < 0.2:
        p = 0.08 + 0.3 * rng.random()
        probs = [p + rng.random() * (0.95 - 2 * p)]
    else:
        p = 1 - 0.6 * rng.random() ** 2
        probs = []
    rest = max(0.0, 1 - p - sum(probs))
    while len(probs) < top:
        share = rest * (0.3 + 0.3 * rng.random())
        probs.append(share)
        rest -= share
    ranked = [(token, p)] + list(zip(_alternatives(token, rng, top), probs[:top], strict=True))
    ranked.sort(key=lambda tp: -tp[1])

    def lp(prob: float) -> float:
        return round(math.log(max(prob, 1e-9)), 6)

    entry = _lp_entry(token, lp(p))
    entry["top_logprobs"] = [_lp_entry(t, lp(q)) for t, q in ranked[:top]]
    return entry


def _legacy_logprobs(entries: list[dict[str, Any]], start_offset: int = 0) -> dict[str, Any]:
    """The legacy completions shape for a run of chat-shaped entries.

    An entry without ``logprob`` (the first token of an echoed prompt) gets nulls, as
    OpenAI sends them.
    """
    tokens, values, tops, offsets = [], [], [], []
    offset = start_offset
    for entry in entries:
        token = entry["token"]
        tokens.append(token)
        offsets.append(offset)
        offset += len(token)
        if "logprob" not in entry:
            values.append(None)
            tops.append(None)
            continue
        values.append(entry["logprob"])
        top = {t["token"]: t["logprob"] for t in entry["top_logprobs"]}
        top.setdefault(token, entry["logprob"])  # the sampled token is always there
        tops.append(top)
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


# --------------------------------------------------------------------------- the app
