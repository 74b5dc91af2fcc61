"""What every probe shares: the four statuses, the request helpers and the evidence.

A probe sends a tiny request (or a few) and decides one of:

- ``supported``: accepted, and the answer looks the way OpenAI's API answers;
- ``unsupported``: refused (a 4xx about the request), or the path does not exist;
- ``different``: accepted, but the answer is not what the feature promises (a stop
  sequence in the text, one choice for ``n=2``, no usage chunk, text that is not JSON...);
- ``inconclusive``: nothing can be concluded (timeout, 401, 429, 5xx, no model to try, an
  answer cut by the token limit).

Every outcome keeps its evidence: HTTP status, the provider's own error, a snippet of the
answer and what was sent; the runner adds the time it took.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chat.upstream import (
    Endpoint,
    Finish,
    Secrets,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    UpstreamFailure,
    chat_once,
    stream_chat,
)
from chat.upstream import client as upstream_client

SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
DIFFERENT = "different"
INCONCLUSIVE = "inconclusive"
STATUSES = (SUPPORTED, UNSUPPORTED, DIFFERENT, INCONCLUSIVE)
STATUS_LABELS = {
    SUPPORTED: "supported",
    UNSUPPORTED: "not supported",
    DIFFERENT: "behaves differently",
    INCONCLUSIVE: "could not tell",
}

LIMIT = 16  # tokens for a plain probe
SNIPPET = 200
SENT_MAX = 400

# Statuses that say nothing about the feature: auth, payment, rate limits, conflicts.
NOT_ABOUT_THE_FEATURE = {401, 402, 403, 408, 409, 429}


@dataclass
class Context:
    endpoint: Endpoint
    model: str
    # The field that limits answers, decided from the max_tokens probes.
    limit_field: str | None = "max_tokens"
    # The probes' token limits are multiplied by this: a probe asked again after its
    # answer was cut by its own limit gets a larger budget (check.RETRY_BUDGET).
    budget: int = 1


@dataclass
class Outcome:
    status: str
    summary: str
    http_status: int | None = None
    error: dict[str, Any] | None = None
    snippet: str = ""
    sent: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    key: str
    feature: str
    run: Callable[[Context], Awaitable[Outcome]]
    # 1: runs first (finds the model and the token-limit field); 2: everything else;
    # 3: after that, with nothing else of the check in flight.
    phase: int = 2


def short(value: Any, limit: int = SNIPPET) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(path: str, body: dict[str, Any], hide: tuple[str, ...] = ()) -> str:
    """What was sent, for the evidence: the body without the model; ``hide`` shortened."""
    text = json.dumps({k: v for k, v in body.items() if k != "model"}, ensure_ascii=False)
    for secret in hide:
        text = text.replace(secret, secret[:24] + "…")
    return short(f"POST {path} {text}", SENT_MAX)


def error_evidence(error: UpstreamError) -> dict[str, Any]:
    return {k: v for k, v in error.as_dict().items() if v is not None and k != "status"}


def refused(error: UpstreamError, sent: str, *, what: str, missing_path: bool = False) -> Outcome:
    """An error answer: refused (unsupported), or nothing to conclude (inconclusive)."""
    status = error.status
    evidence = error_evidence(error)
    message = short(error.message, 160)
    if status is None or status in NOT_ABOUT_THE_FEATURE or status >= 500:
        where = f"HTTP {status}" if status else "no answer"
        return Outcome(INCONCLUSIVE, f"Could not tell ({where}): {message}", status, evidence,
                       sent=sent)  # fmt: skip
    if status in (404, 405) and not missing_path:
        # A 404 on a chat request is about the model (or the URL), not the feature.
        return Outcome(INCONCLUSIVE, f"Could not tell (HTTP {status}): {message}", status,
                       evidence, sent=sent)  # fmt: skip
    return Outcome(UNSUPPORTED, f"Refused {what} (HTTP {status}): {message}", status, evidence,
                   sent=sent, facts={"rejected": True})  # fmt: skip


# --------------------------------------------------------------------------- requests


@dataclass
class Reply:
    """A one-shot answer: ``obj`` when it worked, else ``error``."""

    obj: dict[str, Any]
    error: UpstreamError | None
    sent: str

    @property
    def choice(self) -> dict[str, Any]:
        return choice_of(self.obj)

    @property
    def message(self) -> dict[str, Any]:
        message = self.choice.get("message")
        return message if isinstance(message, dict) else {}

    @property
    def text(self) -> str:
        return upstream_client._content_text(self.message.get("content"))

    @property
    def finish_reason(self) -> Any:
        return self.choice.get("finish_reason")

    @property
    def completion_tokens(self) -> int | None:
        usage = self.obj.get("usage")
        value = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def choice_of(obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    choices = obj.get("choices")
    if isinstance(choices, list) and len(choices) > index and isinstance(choices[index], dict):
        return choices[index]
    return {}


async def once(
    ctx: Context, body: dict[str, Any], *, path: str = "chat/completions", hide: tuple = ()
) -> Reply:
    sent = describe(path, body, hide)
    try:
        return Reply(await chat_once(ctx.endpoint, body, path=path), None, sent)
    except UpstreamFailure as exc:
        return Reply({}, exc.error, sent)


@dataclass
class Streamed:
    events: list[Any]
    raw: list[str]  # each SSE data payload as sent (or the whole body of a JSON answer)
    sent: str
    ttft_ms: int | None
    # The endpoint's: a secret split across deltas is whole again in ``text``.
    secrets: Secrets = field(default_factory=Secrets)

    @property
    def error(self) -> UpstreamError | None:
        return next((e for e in self.events if isinstance(e, UpstreamError)), None)

    @property
    def answered(self) -> bool:
        """Whether anything but an error came (an error before that is a refusal)."""
        return any(isinstance(e, TextDelta | ToolCallDelta | Finish) for e in self.events)

    @property
    def text(self) -> str:
        text = "".join(e.text for e in self.events if isinstance(e, TextDelta) and e.choice == 0)
        return self.secrets.text(text)

    def chunks(self) -> list[dict[str, Any]]:
        out = []
        for data in self.raw:
            with contextlib.suppress(ValueError):
                obj = json.loads(data)
                if isinstance(obj, dict):
                    out.append(obj)
        return out


async def stream(ctx: Context, body: dict[str, Any], *, path: str = "chat/completions") -> Streamed:
    raw: list[str] = []
    events: list[Any] = []
    started = time.monotonic()
    ttft = None
    answer = stream_chat(ctx.endpoint, body, path=path, raw=raw)
    async with contextlib.aclosing(answer) as answer:
        async for event in answer:
            if ttft is None and isinstance(event, TextDelta | ToolCallDelta | Finish):
                ttft = round((time.monotonic() - started) * 1000)
            events.append(event)
    return Streamed(events, raw, describe(path, body), ttft, ctx.endpoint.secrets)


def chat_body(ctx: Context, content: Any, *, limit: int = LIMIT, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": ctx.model, "messages": [{"role": "user", "content": content}]}
    if ctx.limit_field:
        body[ctx.limit_field] = limit * ctx.budget
    body.update(extra)
    return body


def parsed_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, str(exc)
