"""A run's accumulated text: one TextStream per field, and the event helpers it needs.

An echoed secret becomes [redacted] before anything is kept or broadcast (the endpoint's
``Secrets``, chat.upstream.secrets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chat.upstream import Usage
from chat.upstream.secrets import Secrets, SecretStream

# Stream fields, also the DOM id prefixes: "t" is choice 0's text, "r" its reasoning,
# "t1", "t2", ... the text of the other choices when n > 1.
CONTENT, REASONING = "t", "r"


def text_field(choice: int) -> str:
    return CONTENT if choice == 0 else f"t{choice}"


def response_model(raw: list[str]) -> str:
    """The ``model`` the endpoint says answered (its chunks or JSON body carry one), or "".
    ``raw`` as recorded: an echoed secret is already out of it (chat.upstream.secrets)."""
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
class TextStream:
    """Text accumulated for one field, and how much of it was broadcast.

    With `secrets`, an echoed secret becomes [redacted] before anything is kept or
    broadcast, even split across deltas (the endpoint's ``Secrets.stream()`` holds back
    the tail that could begin one until more text comes or the stream ends: ``flush``);
    ``fragments`` are the pieces it cut out, with the raw line each came in."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    sent: int = 0
    pending: list[str] = field(default_factory=list)
    secrets: Secrets | None = None
    redactor: SecretStream | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.secrets:
            self.redactor = self.secrets.stream()

    @property
    def fragments(self) -> list[tuple[int, str]]:
        return self.redactor.fragments if self.redactor is not None else []

    def append(self, text: str, source: int = -1) -> None:
        if self.redactor is not None:
            text = self.redactor.feed(text, source)
        self._keep(text)

    def _keep(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pending.append(text)
            self.length += len(text)

    def flush(self) -> None:
        """The end of the stream: what was held back can no longer begin a secret."""
        if self.redactor is not None:
            self._keep(self.redactor.flush())

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
