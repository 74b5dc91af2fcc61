"""Token usage: parsing a provider's ``usage`` object, and summing usage per choice."""

from __future__ import annotations

from typing import Any

from .events import Event, Finish, Usage


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(raw: dict[str, Any]) -> Usage:
    prompt = _int_or_none(raw.get("prompt_tokens"))
    completion = _int_or_none(raw.get("completion_tokens"))
    total = _int_or_none(raw.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total, raw=raw)


class _UsagePerChoice:
    """The usage of a stream when the endpoint counts each choice apart.

    llama.cpp's llama-server, asked for ``n`` > 1 while streaming, ends each choice with
    its own usage chunk (``choices: []``, that choice's completion tokens, the prompt's
    tokens each time). A usage chunk that follows the end of another choice is added to
    the ones before it (the prompt counted once); any other replaces them, as before.
    """

    __slots__ = ("finished", "counted", "total")

    def __init__(self) -> None:
        self.finished: set[int] = set()
        self.counted: set[int] = set()
        self.total: Usage | None = None

    def track(self, event: Event) -> Event:
        """Note a choice's end; a usage event comes back summed as needed (see ``add``)."""
        kind = type(event)
        if kind is Finish:
            self.finished.add(event.choice)
        elif kind is Usage:
            return self.add(event)
        return event

    def add(self, usage: Usage) -> Usage:
        another_choice_ended = not self.finished <= self.counted
        if self.total is not None and self.total.alone and usage.alone and another_choice_ended:
            usage = _usage_sum(self.total, usage)
        self.counted = set(self.finished)
        self.total = usage
        return usage


def _usage_sum(a: Usage, b: Usage) -> Usage:
    def added(x: int | None, y: int | None) -> int | None:
        return None if x is None and y is None else (x or 0) + (y or 0)

    prompts = [t for t in (a.prompt_tokens, b.prompt_tokens) if t is not None]
    prompt = max(prompts) if prompts else None  # the same prompt for every choice
    completion = added(a.completion_tokens, b.completion_tokens)
    total = None if prompt is None or completion is None else prompt + completion
    raw = dict(b.raw)
    raw.update(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)
    reasoning = [
        u.raw.get("completion_tokens_details", {}).get("reasoning_tokens")
        for u in (a, b)
        if isinstance(u.raw.get("completion_tokens_details"), dict)
    ]
    if any(isinstance(r, int) for r in reasoning):
        details = dict(raw.get("completion_tokens_details") or {})
        details["reasoning_tokens"] = sum(r for r in reasoning if isinstance(r, int))
        raw["completion_tokens_details"] = details
    return Usage(prompt, completion, total, raw, alone=True)
