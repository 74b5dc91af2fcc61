"""Writing replies: errors in the configured shape, whole JSON answers and SSE streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import _HTML_502, _Fail, _HtmlFail, _scripted_failure
from .logprobs import _legacy_logprobs
from .plan import _Choice, _Plan
from .tools import _tool_call_message

_JSON = "application/json"

Step = tuple[float, bytes, bool]  # (at seconds, data, counts as a token)


@dataclass
class _Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    delay: float = 0.0
    stream: Iterator[Step] | None = None  # (at seconds, data, is_token)
    # Hold the stream after this many tokens until the named gate opens (Directives).
    hold_after: int | None = None
    gate: str | None = None


def _json_reply(status: int, obj: Any) -> _Reply:
    return _Reply(status, [(b"content-type", _JSON.encode())], json.dumps(obj).encode())


def error_reply(fail: _Fail, error_shape: str) -> _Reply:
    if isinstance(fail, _HtmlFail):
        return _Reply(fail.status, [(b"content-type", b"text/html")], _HTML_502.encode())
    if error_shape == "plain":
        text = fail.plain or f"Internal error: {fail.message}"
        headers = [(b"content-type", b"text/plain; charset=utf-8"), *fail.headers]
        return _Reply(fail.status, headers, text.encode())
    error = {"message": fail.message, "type": fail.type, "param": fail.param, "code": fail.code}
    reply = _json_reply(fail.status, {"error": error})
    reply.headers.extend(fail.headers)
    return reply


def stream_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
    ]


def stream_reply(plan: _Plan) -> _Reply:
    d = plan.directives
    hold = d.hold_after if d.gate is not None else None
    return _Reply(200, stream_headers(), stream=_sse_script(plan), hold_after=hold, gate=d.gate)


# ----------------------------------------------------------------- whole answers


def _full_choice(plan: _Plan, i: int, c: _Choice) -> dict[str, Any]:
    if plan.kind == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": c.text}
        if c.reasoning_text:
            message[plan.directives.reasoning_field] = c.reasoning_text
        if c.tool_calls:
            message["tool_calls"] = _tool_call_message(c.tool_calls)
        logprobs = {"content": c.logprobs, "refusal": None} if c.logprobs else None
        finish = c.finish_reason
        return {"index": i, "message": message, "logprobs": logprobs, "finish_reason": finish}
    legacy = _legacy_logprobs(c.logprobs) if c.logprobs is not None else None
    return {"index": i, "text": c.text, "logprobs": legacy, "finish_reason": c.finish_reason}


def full_reply(plan: _Plan, error_shape: str) -> _Reply:
    d = plan.directives
    delay = plan.ttft + plan.step * max(len(c.deltas) for c in plan.choices)
    if d.error_after is not None:
        reply = error_reply(_scripted_failure(500, d.message), error_shape)
        reply.delay = delay
        return reply
    obj = plan.base()
    obj["object"] = "chat.completion" if plan.kind == "chat" else "text_completion"
    obj["choices"] = [_full_choice(plan, i, c) for i, c in enumerate(plan.choices)]
    if d.usage:
        obj["usage"] = plan.usage
    reply = _json_reply(200, obj)
    if d.cut_after is not None:
        # Simulate a connection that drops mid-body: a truncated JSON document.
        reply.body = reply.body[: max(1, len(reply.body) // 2)]
        reply.headers = [(b"content-type", _JSON.encode())]
    reply.delay = delay
    return reply


# ----------------------------------------------------------------- streams


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


class _SseScript:
    """One plan's stream, step by step; keeps the state the steps share."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.d = plan.directives
        self.last_at = 0.0
        self.offsets = [0] * len(plan.choices)  # legacy text_offset of each choice's next token

    def chunk(self, choices: list[dict[str, Any]]) -> bytes:
        obj = {**self.plan.base(), "choices": choices}
        if self.plan.include_usage:
            obj["usage"] = None
        return _sse(obj)

    def at(self, t: float, data: bytes, is_token: bool = False) -> Iterator[Step]:
        """``data`` at ``t``, after a keep-alive comment halfway there when scripted."""
        if self.d.keepalive:
            yield (self.last_at + t) / 2, b": keep-alive\n\n", False
        self.last_at = t
        yield t, data, is_token

    def choice_obj(
        self, index: int, delta: dict[str, Any], finish: str | None, piece: int | None = None
    ) -> dict[str, Any]:
        c = self.plan.choices[index]
        entries = c.logprobs
        entry = None
        if entries is not None and piece is not None and piece >= c.reasoning:
            entry = entries[piece - c.reasoning]
        if self.plan.kind == "chat":
            logprobs = {"content": [entry], "refusal": None} if entry else None
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        text = delta.get("text", "")
        logprobs = _legacy_logprobs([entry], self.offsets[index]) if entry else None
        self.offsets[index] += len(text)
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}

    def broken(self, t: float, emitted: int) -> Iterator[Step] | None:
        """The scripted end of a broken stream once ``emitted`` tokens went out, else None."""
        d = self.d
        if d.error_after is not None and emitted >= d.error_after:
            message = d.message or "The server had an error while processing your request."
            error = {"error": {"message": message, "type": "server_error", "code": None}}
            return self.at(t, _sse(error))
        if d.cut_after is not None and emitted >= d.cut_after:
            return iter(())
        return None

    def roles(self) -> Iterator[Step]:
        """Chat: a first chunk per choice with the assistant role."""
        if self.plan.kind == "chat":
            for i in range(len(self.plan.choices)):
                role = self.choice_obj(i, {"role": "assistant", "content": ""}, None)
                yield from self.at(self.plan.ttft, self.chunk([role]))

    def steps(self) -> Iterator[Step]:
        plan = self.plan
        yield from self.roles()
        t = plan.ttft
        emitted = 0
        rounds = max(len(c.deltas) for c in plan.choices)
        for r in range(rounds + 1):
            t = plan.ttft + r * plan.step
            for i, c in enumerate(plan.choices):
                if r > len(c.deltas):
                    continue
                stop = self.broken(t, emitted)
                if stop is not None:
                    yield from stop
                    return
                if r < len(c.deltas):
                    delta = self.choice_obj(i, c.deltas[r], None, r)
                    yield from self.at(t, self.chunk([delta]), True)
                    emitted += 1
                else:
                    yield from self.at(t, self.chunk([self.choice_obj(i, {}, c.finish_reason)]))
        yield from self.trailer(t)

    def trailer(self, t: float) -> Iterator[Step]:
        if self.plan.include_usage and self.d.usage:
            usage = {**self.plan.base(), "choices": [], "usage": self.plan.usage}
            yield from self.at(t, _sse(usage))
        yield from self.at(t, b"data: [DONE]\n\n")


def _sse_script(plan: _Plan) -> Iterator[Step]:
    """The stream as (time offset, bytes, counts-as-token) steps, computed lazily."""
    return _SseScript(plan).steps()
