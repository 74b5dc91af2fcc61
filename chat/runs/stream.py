"""A run's accumulated text: one _Stream per field, and the event helpers it needs.

An echoed secret becomes [redacted] before anything is kept or broadcast (chat.runs.redact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chat.runs.redact import REDACTED
from chat.upstream import Usage

# Stream fields, also the DOM id prefixes: "t" is choice 0's text, "r" its reasoning,
# "t1", "t2", ... the text of the other choices when n > 1.
CONTENT, REASONING = "t", "r"


def text_field(choice: int) -> str:
    return CONTENT if choice == 0 else f"t{choice}"


def response_model(raw: list[str]) -> str:
    """The ``model`` the endpoint says answered (its chunks or JSON body carry one), or ""."""
    for line in raw[:8]:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            return data["model"][:200]
    return ""


def usage_summary(event: Usage) -> dict[str, Any]:
    """The usage figures worth keeping, including the detail some endpoints send."""
    usage = {
        k: v
        for k, v in {
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "total_tokens": event.total_tokens,
        }.items()
        if v is not None
    }
    details = event.raw.get("completion_tokens_details") or {}
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        usage["reasoning_tokens"] = details["reasoning_tokens"]
    cached = event.raw.get("prompt_tokens_details") or {}
    if isinstance(cached, dict) and isinstance(cached.get("cached_tokens"), int):
        usage["cached_tokens"] = cached["cached_tokens"]
    return usage


@dataclass
class _Stream:
    """Text accumulated for one field, and how much of it was broadcast.

    With `secrets`, an echoed secret becomes [redacted] before anything is kept or
    broadcast, even split across deltas: the tail that could begin a secret (at most
    len(longest secret) - 1 characters) is held back until more text comes or the stream
    ends (flush). Each piece of a redacted secret is noted in `fragments` with the raw
    line (`source`) its delta came from, so the raw response can lose it too."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    sent: int = 0
    pending: list[str] = field(default_factory=list)
    secrets: tuple[str, ...] = ()
    held: list[tuple[int, str]] = field(default_factory=list)  # (source, piece)
    fragments: list[tuple[int, str]] = field(default_factory=list)

    def append(self, text: str, source: int = -1) -> None:
        if self.secrets:
            text = self._redacted([*self.held, (source, text)])
        self._keep(text)

    def _keep(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pending.append(text)
            self.length += len(text)

    def _redacted(self, pieces: list[tuple[int, str]], *, final: bool = False) -> str:
        """The pieces' text with every whole secret replaced, less the tail held back."""
        text = "".join(piece for _, piece in pieces)
        spans, at = [], 0  # (source, start, end) of each piece in `text`
        for source, piece in pieces:
            spans.append((source, at, at + len(piece)))
            at += len(piece)
        out, pos = [], 0
        while True:
            found = [(i, sec) for sec in self.secrets if (i := text.find(sec, pos)) >= 0]
            if not found:
                break
            i, secret = min(found, key=lambda f: (f[0], -len(f[1])))
            if not final and any(
                len(sec) > len(text) - i and sec.startswith(text[i:]) for sec in self.secrets
            ):
                break  # a longer secret may still match here: wait for more text
            out.append(text[pos:i] + REDACTED)
            for source, a, b in spans:
                lo, hi = max(a, i), min(b, i + len(secret))
                if lo < hi:
                    self.fragments.append((source, text[lo:hi]))
            pos = i + len(secret)
        # Hold back the shortest tail that may begin a secret (usually nothing).
        firsts = {sec[0] for sec in self.secrets}
        cut = len(text) if final else max(pos, len(text) - (len(self.secrets[0]) - 1))
        while cut < len(text) and not (
            text[cut] in firsts and any(sec.startswith(text[cut:]) for sec in self.secrets)
        ):
            cut += 1
        self.held = [(source, text[max(a, cut) : b]) for source, a, b in spans if b > max(a, cut)]
        out.append(text[pos:cut])
        return "".join(out)

    def flush(self) -> None:
        """The end of the stream: what was held back can no longer begin a secret."""
        if self.held:
            self._keep(self._redacted(self.held, final=True))
            self.held = []

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def take_pending(self) -> tuple[int, str]:
        chunk = "".join(self.pending)
        self.pending.clear()
        offset = self.sent
        self.sent += len(chunk)
        return offset, chunk
