"""Echoed secrets: the one place that keeps an endpoint's API key and extra header values
out of what it sends back.

Some endpoints repeat the request's credentials: in an error, a model id, a tool-call id,
a finish reason, the answer itself (split across deltas), its logprob tokens, the raw
lines, a ``/models`` list. Every string that comes from an endpoint passes through the
endpoint's ``Secrets`` (``Endpoint.secrets``, built once from its key and header values)
before it is stored, shown, broadcast, exported or logged:

- ``text``: one whole string (also NUL characters out: PostgreSQL refuses them);
- ``value``: every string (and key) of a decoded JSON value;
- ``error``: every field of an ``UpstreamError``;
- ``event``: a typed event's whole strings (ids, names, finish reasons, errors); the text
  of deltas goes through ``stream`` instead, which sees across deltas;
- ``stream``: a ``SecretStream`` for one field's deltas: a secret split across them is
  redacted before anything is shown, holding back only what could begin one;
- ``tokens``: logprob tokens, whose joined text may spell a secret;
- ``raw``: a raw response line, compared on its decoded JSON (a key spelled
  ``\\u0073k-...`` is still the key), plus the pieces a ``SecretStream`` cut out of it.

Secrets shorter than 4 characters are not looked for (they would redact ordinary words).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from .events import (
    Event,
    Finish,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
)

REDACTED = "[redacted]"
MIN_LENGTH = 4

T = TypeVar("T", str, None)


def no_nul(text: str) -> str:
    # PostgreSQL refuses U+0000 in text and jsonb; nobody needs it in chat text.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class Secrets:
    """The secrets of one endpoint, longest first, and every way of keeping them out."""

    __slots__ = ("values", "_escapes")

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        found = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH}
        self.values: tuple[str, ...] = tuple(sorted(found, key=len, reverse=True))
        # The JSON escapes that could spell a character of a secret (\u any; the others
        # only their own; a key or header value holds no control character): a raw line
        # without them and without a secret as such is passed as it is, undecoded.
        chars = set("".join(self.values))
        self._escapes = ("\\u", *(f"\\{c}" for c in '/"\\' if c in chars))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __repr__(self) -> str:  # never the values themselves
        return f"<Secrets: {len(self.values)}>"

    # --- whole strings -------------------------------------------------------------------
    def text(self, text: T) -> T:
        """One whole string with every secret in it replaced."""
        if not text:
            return text
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return no_nul(text)

    def value(self, value: Any) -> Any:
        """A decoded JSON value with every string in it (and every key) redacted."""
        try:
            return self._walk(value, lambda s, _key: self.text(s))
        except RecursionError:  # deeper than any answer: keep its text, redacted
            return self.text(json.dumps(value, ensure_ascii=False, default=str))

    def error(self, error: UpstreamError) -> UpstreamError:
        error.message = self.text(error.message) or ""
        error.type = self.text(error.type)
        error.code = self.text(error.code)
        error.param = self.text(error.param)
        error.body = self.text(error.body)
        return error

    def event(self, event: Event) -> Event:
        """A typed event with its whole strings redacted. The text of deltas is only
        cleaned of NULs here: a secret can be split across them (see ``stream``)."""
        if isinstance(event, TextDelta | ReasoningDelta):
            event.text = no_nul(event.text)
        elif isinstance(event, ToolCallDelta):
            event.arguments = no_nul(event.arguments)
            event.id = self.text(event.id)
            event.name = self.text(event.name)
        elif isinstance(event, Finish):
            event.reason = self.text(event.reason) or ""
        elif isinstance(event, Usage):
            event.raw = self.value(event.raw)
        elif isinstance(event, UpstreamError):
            self.error(event)
        elif isinstance(event, ResponseDone):
            event.id = self.text(event.id)
            event.output = self.value(event.output)
        return event

    # --- pieces --------------------------------------------------------------------------
    def stream(self) -> SecretStream:
        return SecretStream(self.values)

    def tokens(
        self, tokens: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        """Logprob tokens with every secret their joined text spells replaced: the token
        where an occurrence starts has [redacted] in place of its part of it, the other
        tokens it spans lose their part (often becoming ""), and every token touched loses
        its alternatives (they are guesses at the secret). Also the pieces cut out, with
        the number of the token each came from (for ``raw``)."""
        if not self.values:
            return tokens, []
        texts = [t["token"] if isinstance(t.get("token"), str) else "" for t in tokens]
        text = "".join(texts)
        spans = [(i, i + len(secret)) for i, secret in _occurrences(text, self.values)]
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
            elif isinstance(top, list) and any(self._alternative(alt) != alt for alt in top):
                out.append({**item, "top": [self._alternative(alt) for alt in top]})
            else:
                out.append(item)
        return out, cut

    def _alternative(self, alt: Any) -> Any:
        if not isinstance(alt, dict) or not isinstance(alt.get("token"), str):
            return alt
        return {**alt, "token": self.text(alt["token"])}

    def raw(self, line: str, pieces: Iterable[str] = ()) -> str:
        """A raw line as the endpoint sent it, less the secrets. A JSON line is compared
        decoded (an escaped character hides nothing) and written again only when
        something was redacted; ``pieces`` (of a secret split across deltas) are replaced
        in its text fields and logprob tokens only (a piece may be one character), and a
        logprob entry whose token no longer matches its bytes loses them. Any other
        line is redacted as text."""
        parts = sorted(set(pieces), key=len, reverse=True)
        if not parts and not self._may_hide(line):
            return line
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            return self.text(line) or ""

        def redact(text: str, key: str) -> str:
            if key in _TEXT_KEYS or key in _TOKEN_KEYS:
                for piece in parts:
                    text = text.replace(piece, REDACTED)
            return self.text(text)

        try:
            cleaned = self._walk(data, redact)
        except RecursionError:
            return self.text(line) or ""
        return line if cleaned == data else json.dumps(cleaned, ensure_ascii=False)

    def _may_hide(self, line: str) -> bool:
        """Whether ``line`` may carry a secret: spelled plainly, or behind a JSON escape."""
        if not self.values:
            return False
        if "\\" in line and any(escape in line for escape in self._escapes):
            return True
        return any(s in line for s in self.values)

    @staticmethod
    def _walk(value: Any, redact: Any, key: str = "") -> Any:
        """``value`` rebuilt with ``redact(string, key it is under)`` applied to every string
        and dict key (under "token" for a legacy ``top_logprobs`` dict, keyed by token); a
        logprob entry whose token changed loses its bytes (they would spell the old one)."""
        if isinstance(value, dict):
            legacy = key == "top_logprobs" and "token" not in value
            out = {
                (redact(k, "token" if legacy else "") if isinstance(k, str) else k): (
                    Secrets._walk(v, redact, k)
                )
                for k, v in value.items()
            }
            if out.get("bytes") is not None and out.get("token") != value.get("token"):
                out["bytes"] = None
            return out
        if isinstance(value, list):
            return [Secrets._walk(v, redact, key) for v in value]
        if isinstance(value, str):
            return redact(value, key)
        return value


# Fields whose text a SecretStream redacts piece by piece (raw lines lose the pieces there).
# Where streamed text comes: chat deltas' fields, and the Responses API's typed events
# (``delta`` of output_text, reasoning and function-call arguments events).
_TEXT_KEYS = {"content", "reasoning_content", "reasoning", "arguments", "text", "name", "delta"}
# Logprob tokens: chat ``{"token", "bytes"}`` entries, legacy ``tokens`` lists and
# ``top_logprobs`` dicts keyed by token.
_TOKEN_KEYS = {"token", "tokens"}


def _occurrences(text: str, secrets: tuple[str, ...], pos: int = 0) -> list[tuple[int, str]]:
    """Where each secret occurs in ``text`` from ``pos``, left to right, the longest where
    two start at the same place, never overlapping."""
    found: list[tuple[int, str]] = []
    while True:
        hits = [(i, s) for s in secrets if (i := text.find(s, pos)) >= 0]
        if not hits:
            return found
        i, secret = min(hits, key=lambda h: (h[0], -len(h[1])))
        found.append((i, secret))
        pos = i + len(secret)


class SecretStream:
    """One field's deltas (text, reasoning, a tool call's arguments) with every secret
    redacted before any of it is shown, even split across deltas: the tail that could
    begin a secret (at most len(longest) - 1 characters) is held back until more text
    comes or the stream ends (``flush``). Each piece of a redacted secret is noted in
    ``fragments`` with the raw line (``source``) its delta came in, for ``Secrets.raw``."""

    __slots__ = ("secrets", "held", "fragments")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.held: list[tuple[int, str]] = []  # (source, piece)
        self.fragments: list[tuple[int, str]] = []

    def feed(self, text: str, source: int = -1) -> str:
        """What of the stream can be shown now that ``text`` came."""
        if not self.secrets:
            return text
        return self._redacted([*self.held, (source, text)])

    def flush(self) -> str:
        """The end of the stream: what was held back can no longer begin a secret."""
        if not self.held:
            return ""
        out = self._redacted(self.held, final=True)
        self.held = []
        return out

    def _redacted(self, pieces: list[tuple[int, str]], *, final: bool = False) -> str:
        """The pieces' text with every whole secret replaced, less the tail held back."""
        text = "".join(piece for _, piece in pieces)
        spans, at = [], 0  # (source, start, end) of each piece in `text`
        for source, piece in pieces:
            spans.append((source, at, at + len(piece)))
            at += len(piece)
        out, pos = [], 0
        for i, secret in _occurrences(text, self.secrets):
            if not final and any(
                len(s) > len(text) - i and s.startswith(text[i:]) for s in self.secrets
            ):
                break  # a longer secret may still match here: wait for more text
            out.append(text[pos:i] + REDACTED)
            for source, a, b in spans:
                lo, hi = max(a, i), min(b, i + len(secret))
                if lo < hi:
                    self.fragments.append((source, text[lo:hi]))
            pos = i + len(secret)
        # Hold back the shortest tail that may begin a secret (usually nothing).
        firsts = {s[0] for s in self.secrets}
        cut = len(text) if final else max(pos, len(text) - (len(self.secrets[0]) - 1))
        while cut < len(text) and not (
            text[cut] in firsts and any(s.startswith(text[cut:]) for s in self.secrets)
        ):
            cut += 1
        self.held = [(source, text[max(a, cut) : b]) for source, a, b in spans if b > max(a, cut)]
        out.append(text[pos:cut])
        return no_nul("".join(out))
