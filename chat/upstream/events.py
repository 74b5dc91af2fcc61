"""Typed events produced by the upstream client.

A run consumes these; nothing outside ``chat.upstream`` parses provider JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TextDelta:
    text: str
    choice: int = 0


@dataclass(slots=True)
class ReasoningDelta:
    text: str
    choice: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """One streamed fragment of a tool call; fragments are joined by ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


@dataclass(slots=True)
class Logprobs:
    """Token log-probabilities for a stretch of one choice's text, in order.

    Each token is ``{"token": str, "logprob": float, "top": [{"token": str, "logprob":
    float}, ...]}``, ``top`` sorted most likely first (empty when the endpoint sent no
    alternatives).  The same shape whether the endpoint used the chat form
    (``logprobs.content``) or the legacy completions form (``tokens``/``token_logprobs``/
    ``top_logprobs``).  A logprob the endpoint left null (the first echoed prompt token of a
    legacy completion) is 0.0; one of minus infinity is -9999.0, as OpenAI sends it.
    """

    choice: int
    tokens: list[dict[str, Any]]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # Sent in a chunk of its own (``choices: []``), as OpenAI's final usage chunk is.
    alone: bool = field(default=False, compare=False)


@dataclass(slots=True)
class Finish:
    reason: str
    choice: int = 0


@dataclass(slots=True)
class UpstreamError:
    """An error from the endpoint or the way to it.

    ``status`` is the HTTP status when there was a response (None for connect errors,
    timeouts and errors sent mid-stream inside a 200). ``message``/``type``/``code``/
    ``param`` keep the provider's own words from ``{"error": {...}}`` when it sent them.
    """

    message: str
    status: int | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    body: str | None = None  # a snippet of the raw body when it was not the usual shape
    retryable: bool = False
    retry_after: float | None = None  # seconds, from a Retry-After header

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": self.status,
            "type": self.type,
            "code": self.code,
            "param": self.param,
            "body": self.body,
        }


@dataclass(slots=True)
class ResponseDone:
    """The end of a Responses API answer: its id (for ``previous_response_id``) and its
    output items as the server finished them (reasoning items, with ``encrypted_content``
    when asked for, are sent back in the next turn's ``input``)."""

    id: str | None
    output: list[dict[str, Any]]
    status: str = ""


Event = (
    TextDelta | ReasoningDelta | ToolCallDelta | Logprobs | Usage | Finish | UpstreamError
    | ResponseDone
)  # fmt: skip

__all__ = [
    "Event",
    "Finish",
    "Logprobs",
    "ReasoningDelta",
    "ResponseDone",
    "TextDelta",
    "ToolCallDelta",
    "UpstreamError",
    "Usage",
]
