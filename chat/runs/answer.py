"""An answer as it accumulates: pure and synchronous (no event loop, no database, no
clock), so every rule of what a stream of upstream events becomes is testable alone.

Text per field (``TextStream``), tool calls, choices, logprobs, usage and finish
reasons. An echoed secret becomes [redacted] before anything is kept or relayed: the
endpoint's ``Secrets`` (chat.upstream.secrets), the one object that knows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chat import upstream
from chat.tools import ToolCallAssembler
from chat.upstream.secrets import Secrets, SecretStream

# Stream fields, also the DOM id prefixes: "t" is choice 0's text, "r" its reasoning,
# "t1", "t2", ... the text of the other choices when n > 1, "a0", "a1", ... the
# arguments of each tool call.
CONTENT, REASONING = "t", "r"


def text_field(choice: int) -> str:
    return CONTENT if choice == 0 else f"t{choice}"


def is_text_field(name: str) -> bool:
    """Choice text (markdown in a chat answer), not reasoning or tool arguments."""
    return name == CONTENT or (name[:1] == CONTENT and name[1:].isdigit())


@dataclass
class TextStream:
    """Text accumulated for one field, and how much of it was relayed.

    With `secrets`, an echoed secret becomes [redacted] before anything is kept or
    relayed, even split across deltas (``Secrets.stream()`` holds back the tail that
    could begin one until more text comes or the stream ends: ``flush``);
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


def usage_summary(event: upstream.Usage) -> dict[str, Any]:
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


class Answer:
    """What the events of one answer add up to. ``raw`` is the current attempt's raw
    lines (the upstream client appends to it); each piece of text remembers the line
    it came in, so a secret cut out of it can be cut out of that line too."""

    def __init__(self, secrets: Secrets | None = None) -> None:
        self.secrets = secrets if secrets is not None else Secrets()
        self.streams: dict[str, TextStream] = {
            CONTENT: TextStream(secrets=self.secrets),
            REASONING: TextStream(secrets=self.secrets),
        }
        self.tools = ToolCallAssembler()
        self.new_calls: list[int] = []  # slots of calls not yet announced to the pages
        self.usage: dict[str, Any] | None = None
        self.finish_reasons: dict[int, str] = {}
        self.logprobs: dict[int, list[dict[str, Any]]] = {}
        # The raw line each logprob token came in, and the pieces of a secret cut out of
        # the tokens (with their line), for the raw response.
        self.logprob_sources: dict[int, list[int]] = {}
        self.logprob_fragments: list[tuple[int, str]] = []
        self.raw: list[str] = []
        self.size = 0  # characters of text, reasoning and tool arguments so far
        self.first_token_at: float | None = None
        self.finished = False
        # The Responses API's end: {"id", "output", "status"} (upstream.ResponseDone).
        self.response: dict[str, Any] | None = None

    # --- adding -------------------------------------------------------------------------
    def add(self, event: Any, at: float) -> bool:
        """Add one upstream event (``at``: when it arrived, monotonic seconds). True when
        it brought something the pages should see (text, or a tool call)."""
        line = len(self.raw) - 1
        if isinstance(event, upstream.TextDelta | upstream.ReasoningDelta):
            self._first(at)  # any choice's text or reasoning is the first token
            if isinstance(event, upstream.ReasoningDelta):
                if event.choice != 0:
                    return False  # only the continuing choice's reasoning is kept
                name = REASONING
            else:
                name = text_field(event.choice)
            self._stream(name).append(event.text, line)
            self.size += len(event.text)
            return True
        if isinstance(event, upstream.ToolCallDelta):
            if event.choice != 0:
                return False
            self._first(at)
            slot, new = self.tools.add(event.index, event.id, event.name, event.arguments)
            if new:
                self.new_calls.append(slot)
            stream = self._stream(f"a{slot}")
            if event.arguments:
                stream.append(event.arguments, line)
                self.size += len(event.arguments)
            return True
        if isinstance(event, upstream.Logprobs):
            self.logprobs.setdefault(event.choice, []).extend(event.tokens)
            sources = self.logprob_sources.setdefault(event.choice, [])
            sources.extend([line] * len(event.tokens))
        elif isinstance(event, upstream.Usage):
            self.usage = usage_summary(event)
        elif isinstance(event, upstream.Finish):
            self.finish_reasons[event.choice] = event.reason
        elif isinstance(event, upstream.ResponseDone):
            self.response = {"id": event.id, "output": event.output, "status": event.status}
        return False

    def _first(self, at: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = at

    def _stream(self, name: str) -> TextStream:
        stream = self.streams.get(name)
        if stream is None:
            stream = self.streams[name] = TextStream(secrets=self.secrets)
        return stream

    def finish(self) -> None:
        """The answer ended: release what each stream held back, and take echoed secrets
        out of the logprob tokens as out of the text they spell. Idempotent."""
        for stream in self.streams.values():
            stream.flush()
        if self.finished:
            return
        self.finished = True
        if not self.secrets:
            return
        for choice, tokens in self.logprobs.items():
            self.logprobs[choice], cut = self.secrets.tokens(tokens)
            sources = self.logprob_sources.get(choice, [])
            for number, piece in cut:
                source = sources[number] if number < len(sources) else -1
                self.logprob_fragments.append((source, piece))

    # --- reading ------------------------------------------------------------------------
    @property
    def finish_reason(self) -> str:
        return self.finish_reasons.get(0, "")

    @property
    def chars(self) -> int:
        """Characters of every field (text, reasoning, arguments): a token estimate's base."""
        return sum(stream.length for stream in self.streams.values())

    def text(self, name: str = CONTENT) -> str:
        stream = self.streams.get(name)
        return stream.text() if stream is not None else ""

    def texts(self) -> dict[str, str]:
        return {name: stream.text() for name, stream in self.streams.items()}

    def call_info(self, slot: int) -> dict[str, Any]:
        call = self.tools.calls[slot]  # its id and name were redacted as they arrived
        return {"slot": slot, "name": call["function"]["name"], "id": call["id"]}

    def calls(self) -> list[dict[str, Any]]:
        """The finished tool calls; arguments as streamed (and shown) were redacted piece
        by piece, the saved calls are too, whole."""
        return self.secrets.value(self.tools.finished())

    def choices(self) -> list[dict[str, Any]] | None:
        """Every choice (n > 1, or logprobs/finish reasons of another index), else None."""
        indices = sorted({0, *self.finish_reasons, *self.logprobs} | {
            int(name[1:]) for name in self.streams if name.startswith("t") and name != CONTENT
        })  # fmt: skip
        if indices == [0]:
            return None
        return [
            {
                "index": i,
                "content": self.text(text_field(i)),
                "finish_reason": self.finish_reasons.get(i, ""),
                "logprobs": self.logprobs.get(i),
            }
            for i in indices
        ]

    def raw_redacted(self) -> list[str]:
        """The raw lines without the secrets: whole ones (out since they were recorded),
        and the pieces of one split across deltas, in the lines they came in (logprob
        tokens too, whose bytes go where their token changed). After ``finish``."""
        pieces: dict[int, set[str]] = {}
        fragments = [f for stream in self.streams.values() for f in stream.fragments]
        for source, piece in [*fragments, *self.logprob_fragments]:
            pieces.setdefault(source, set()).add(piece)
        return [self.secrets.raw(line, pieces.get(n, ())) for n, line in enumerate(self.raw)]

    def response_model(self) -> str:
        """The ``model`` the endpoint says answered (its chunks or JSON body carry one),
        or "". The raw lines as recorded: an echoed secret is already out of them."""
        for line in self.raw[:8]:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("response"), dict):
                data = data["response"]  # a Responses API event names it there
            if isinstance(data, dict) and isinstance(data.get("model"), str):
                return data["model"][:200]
        return ""


def metrics(
    answer: Answer,
    *,
    started: float,
    ended: float,
    retries: int = 0,
    prices: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Time to first token, tokens a second and cost, from monotonic timestamps."""
    result: dict[str, Any] = {"total_ms": round((ended - started) * 1000)}
    if answer.first_token_at is None:
        return result
    result["ttft_ms"] = round((answer.first_token_at - started) * 1000)
    tokens = (answer.usage or {}).get("completion_tokens")
    estimated = tokens is None
    if estimated:
        # ~4 characters a token for English text; labelled as an estimate.
        tokens = max(1, round(answer.chars / 4))
    generating = ended - answer.first_token_at
    if generating > 0.001 and tokens:
        result["tokens_per_s"] = round(tokens / generating, 1)
        result["tokens_estimated"] = estimated
    result["completion_tokens"] = tokens
    if retries:
        result["retries"] = retries
    price_in, price_out = prices
    if answer.usage and (price_in is not None or price_out is not None):
        result["cost"] = (
            (answer.usage.get("prompt_tokens") or 0) * (price_in or 0)
            + (answer.usage.get("completion_tokens") or 0) * (price_out or 0)
        ) / 1_000_000
    return result
