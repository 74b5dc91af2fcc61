"""Provider JSON (an SSE chunk or a whole completion) to the typed events of ``events``."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .bodies import _decode
from .endpoint import REASONING_FIELDS
from .errors import SNIPPET_LENGTH, _error_event, _snippet, _str_or_none
from .events import (
    Event,
    Finish,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)
from .logprobs import _logprobs_event
from .usage import _int_or_none, _usage


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers send content parts even in deltas
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _reasoning_text(delta: dict[str, Any], field_name: str) -> Any:
    if field_name in REASONING_FIELDS:
        return delta.get(field_name)
    return delta.get("reasoning_content") or delta.get("reasoning")


def _choice_events(
    choice: dict[str, Any], index: int, reasoning_field: str = "auto"
) -> list[Event]:
    """Events for one choice of a chunk (``delta``) or of a full completion (``message``)."""
    events: list[Event] = []
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        delta = choice.get("message")
    if isinstance(delta, dict):
        reasoning = _reasoning_text(delta, reasoning_field)
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning, choice=index))
        text = _content_text(delta.get("content"))
        if text:
            events.append(TextDelta(text, choice=index))
        calls = delta.get("tool_calls")
        for pos, call in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(call, dict):
                continue
            events.append(_tool_call_delta(call, _int_or_none(call.get("index")), pos, index))
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            events.append(_tool_call_delta({"function": legacy}, 0, 0, index))
    text = choice.get("text")  # legacy /completions
    if isinstance(text, str) and text:
        events.append(TextDelta(text, choice=index))
    logprobs = _logprobs_event(choice.get("logprobs"), index)
    if logprobs is not None:
        events.append(logprobs)
    reason = choice.get("finish_reason")
    if reason:
        events.append(Finish(str(reason), choice=index))
    return events


def _tool_call_delta(call: dict[str, Any], index: int | None, pos: int, choice: int) -> Event:
    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
    args = fn.get("arguments")
    if args is None:
        args = ""
    elif not isinstance(args, str):
        args = json.dumps(args)  # a few servers send the arguments as an object
    return ToolCallDelta(
        index=pos if index is None else index,
        id=_str_or_none(call.get("id")),
        name=_str_or_none(fn.get("name")),
        arguments=args,
        choice=choice,
    )


def _payload_events(obj: dict[str, Any], reasoning_field: str = "auto") -> list[Event]:
    events: list[Event] = []
    choices = obj.get("choices")
    for pos, choice in enumerate(choices if isinstance(choices, list) else []):
        if isinstance(choice, dict):
            index = _int_or_none(choice.get("index"))
            events.extend(_choice_events(choice, pos if index is None else index, reasoning_field))
    usage = obj.get("usage")
    if isinstance(usage, dict):
        event = _usage(usage)
        event.alone = choices == []
        events.append(event)
    return events


def sse_object(data: str, what: str = "chunk") -> dict[str, Any] | list[Event] | None:
    """One SSE ``data`` payload as a JSON object; else what it comes to: ``[]`` for the
    end (``[DONE]``), None for an empty one, ``[error]`` for one that is not an object
    (the stream ends there)."""
    data = data.strip()
    if data == "[DONE]":
        return []
    if not data:
        return None
    try:
        obj = json.loads(data)
    except ValueError as exc:
        message = f"Malformed {what} from the endpoint: {exc}"
        return [UpstreamError(message=message, body=data[:SNIPPET_LENGTH])]
    if not isinstance(obj, dict):
        message = f"Malformed {what} from the endpoint: expected a JSON object"
        return [UpstreamError(message=message, body=data[:SNIPPET_LENGTH])]
    return obj


def _chunk_events(
    data: str, event_name: str, reasoning_field: str = "auto"
) -> tuple[list[Event], bool]:
    """Events for one SSE ``data`` payload, and whether the stream is over."""
    obj = sse_object(data)
    if not isinstance(obj, dict):
        return (obj or [], obj is not None)
    if obj.get("error") or event_name == "error":
        return [_error_event(obj, "The endpoint reported an error mid-stream")], True
    return _payload_events(obj, reasoning_field), False


def _progress(events: list[Event]) -> bool:
    """Whether ``events`` move the answer on: text, reasoning, a tool call's name or
    arguments, token logprobs, usage, a finish or an error. An empty delta, a role or a
    tool call's bare index is not progress: an endpoint repeating it is idle."""
    for event in events:
        if isinstance(event, ToolCallDelta):
            if event.name or event.arguments:
                return True
        elif isinstance(event, Logprobs):
            if event.tokens:
                return True
        else:
            return True
    return False


def _completion_events(
    raw: bytes, response: httpx.Response, reasoning_field: str = "auto"
) -> list[Event]:
    text = _decode(raw, response)
    try:
        obj = json.loads(text)
    except ValueError:
        return [
            UpstreamError(
                message="The endpoint answered with invalid JSON",
                status=response.status_code,
                body=_snippet(text),
            )
        ]
    if isinstance(obj, dict) and obj.get("error"):
        error = _error_event(obj, "The endpoint reported an error")
        error.status = response.status_code
        return [error]
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
        return [
            UpstreamError(
                message="The endpoint answered with JSON that is not a completion",
                status=response.status_code,
                body=_snippet(text),
            )
        ]
    return _payload_events(obj, reasoning_field)


def _is_stream(content_type: str) -> bool | None:
    """True for an event stream, False for JSON, None for anything else."""
    media = content_type.partition(";")[0].strip().lower()
    if "event-stream" in media:
        return True
    if "json" in media:
        return False
    # Some servers and proxies omit or mislabel the type of a stream they do send.
    if media in ("", "text/plain", "application/octet-stream"):
        return True
    return None
