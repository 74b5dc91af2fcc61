"""Secrets out of what a run keeps: the API key and extra header values an endpoint
echoes are replaced by [redacted] in the text (chat.runs.stream._Stream holds back a
tail that may begin one), in the logprob tokens and in the raw response lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chat.upstream import Endpoint
from chat.upstream.client import redact_text

if TYPE_CHECKING:
    from chat.runs.run import Run

REDACTED = "[redacted]"


def endpoint_secrets(endpoint: Endpoint) -> tuple[str, ...]:
    """What an answer must never show: the API key and the extra headers' values (as
    redact_text takes them: 4 characters or more), longest first."""
    secrets = {s for s in (endpoint.api_key, *endpoint.headers.values()) if s and len(s) >= 4}
    return tuple(sorted(secrets, key=len, reverse=True))


def logprobs_redact(run: Run) -> None:
    """Echoed secrets out of the logprob tokens, as out of the text they spell (the
    tokens are saved, shown under "Token probabilities" and exported)."""
    if not run.secrets:
        return
    for choice, tokens in run.logprobs.items():
        run.logprobs[choice], cut = _redacted_tokens(tokens, run.secrets)
        sources = run.logprob_sources.get(choice, [])
        for number, piece in cut:
            run.logprob_fragments.append((sources[number] if number < len(sources) else -1, piece))


def raw_redacted(run: Run) -> list[str]:
    """The raw lines without the secrets: whole ones by text, and the pieces of one
    the endpoint split across deltas in the text fields of the lines they came in
    (logprob tokens too, whose bytes go where their token changed)."""
    pieces: dict[int, set[str]] = {}
    fragments = [f for stream in run.streams.values() for f in stream.fragments]
    for source, piece in [*fragments, *run.logprob_fragments]:
        pieces.setdefault(source, set()).add(piece)
    out = []
    for number, line in enumerate(run.raw):
        redacted = redact_text(line, run.endpoint) or ""
        if pieces.get(number) or redacted != line:
            redacted = _redact_pieces(
                redacted, sorted(pieces.get(number, ()), key=len, reverse=True)
            )
        out.append(redacted)
    return out


_TEXT_KEYS = {"content", "reasoning_content", "reasoning", "arguments", "text", "name"}
# Logprob tokens: chat ``{"token", "bytes"}`` entries, legacy ``tokens`` lists and
# ``top_logprobs`` dicts keyed by token.
_TOKEN_KEYS = {"token", "tokens"}


def _redacted_tokens(
    tokens: list[dict[str, Any]], secrets: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Logprob tokens with every secret their joined text spells replaced: the token where
    an occurrence starts has [redacted] in place of its part of it, the other tokens it
    spans lose their part (often becoming ""), and every token touched loses its
    alternatives (they are guesses at the secret). Also the pieces cut out, with the
    number of the token each came from."""
    texts = [t["token"] if isinstance(t.get("token"), str) else "" for t in tokens]
    text = "".join(texts)
    spans, pos = [], 0
    while True:
        found = [(i, sec) for sec in secrets if (i := text.find(sec, pos)) >= 0]
        if not found:
            break
        i, secret = min(found, key=lambda f: (f[0], -len(f[1])))
        spans.append((i, i + len(secret)))
        pos = i + len(secret)
    out: list[dict[str, Any]] = []
    cut: list[tuple[int, str]] = []
    at = 0
    for number, (item, token) in enumerate(zip(tokens, texts, strict=True)):
        a, b = at, at + len(token)
        at = b
        parts, cursor = [], a
        for i, j in spans:
            lo, hi = max(a, i), min(b, j)
            if lo < hi:
                parts.append(text[cursor:lo] + (REDACTED if lo == i else ""))
                cut.append((number, text[lo:hi]))
                cursor = hi
        top = item.get("top")
        if parts:
            out.append({**item, "token": "".join(parts) + text[cursor:b], "top": []})
        elif isinstance(top, list) and any(
            sec in alt.get("token", "") for alt in top if isinstance(alt, dict) for sec in secrets
        ):
            out.append({**item, "top": [_alt_redacted(alt, secrets) for alt in top]})
        else:
            out.append(item)
    return out, cut


def _alt_redacted(alt: Any, secrets: tuple[str, ...]) -> Any:
    if not isinstance(alt, dict) or not isinstance(alt.get("token"), str):
        return alt
    token = alt["token"]
    for secret in secrets:
        token = token.replace(secret, REDACTED)
    return {**alt, "token": token}


def _redact_pieces(line: str, pieces: list[str]) -> str:
    """A raw JSON line with `pieces` replaced in its text fields and logprob tokens (never
    in other keys, ids or values: a piece may be a single character); a logprob entry
    whose token no longer matches its bytes loses them."""
    try:
        data = json.loads(line)
    except ValueError:
        return line

    def replaced(text: str) -> str:
        for piece in pieces:
            text = text.replace(piece, REDACTED)
        return text

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            legacy = all(v is None or isinstance(v, int | float) for v in value.values())
            if key == "top_logprobs" and legacy and "token" not in value:  # {token: logprob}
                return {replaced(k): v for k, v in value.items()}
            out = {k: walk(v, k) for k, v in value.items()}
            if "bytes" in out and not _bytes_spell(out["bytes"], out.get("token")):
                out["bytes"] = None
            return out
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and (key in _TEXT_KEYS or key in _TOKEN_KEYS):
            return replaced(value)
        return value

    return json.dumps(walk(data), ensure_ascii=False)


def _bytes_spell(raw: Any, token: Any) -> bool:
    if raw is None:
        return True
    try:
        return bytes(raw).decode("utf-8") == token
    except (TypeError, ValueError):
        return False
