"""The Responses API probes (``POST /responses``): served at all, streamed typed events,
usage, function calling, ``text.format``, ``previous_response_id``, ``store``, reasoning
items and ``max_output_tokens``.

Each request is in the Responses shape (``input``, flat function tools, ``text.format``)
and each verdict reads the server's answer as this API defines it, not as chat's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema

from chat.upstream import UpstreamFailure
from chat.upstream import client as upstream_client

from ..base import (
    DIFFERENT,
    INCONCLUSIVE,
    LIMIT,
    SUPPORTED,
    UNSUPPORTED,
    Context,
    Outcome,
    Reply,
    error_evidence,
    once,
    parsed_json,
    refused,
    short,
    stream,
)
from .common import (
    AUTO_TEXT,
    CHAT_PROMPT,
    COUNT_PROMPT,
    JSON_LIMIT,
    TOOL_LIMIT,
    TOOL_PROMPT,
    WEATHER,
    _plural,
)
from .structured import SCHEMA, SCHEMA_PROMPT

PATH = "responses"
CODE_WORD = "PLUM"
REMEMBER_PROMPT = f"Remember this code word: {CODE_WORD}. Reply with the single word: OK"
RECALL_PROMPT = "What is the code word I told you? Reply with the code word only."
# The typed events a stream must start and end with.
ENDS = ("response.completed", "response.incomplete", "response.failed")
FLAT_WEATHER = {"type": "function", **WEATHER["function"]}


def responses_body(ctx: Context, prompt: Any, *, limit: int = LIMIT, **extra: Any) -> dict:
    limit *= ctx.budget
    body: dict[str, Any] = {"model": ctx.model, "input": prompt, "max_output_tokens": limit}
    body.update(extra)
    return body


def output_text(obj: dict[str, Any]) -> str:
    """The text of a Responses object's message items."""
    parts = []
    for item in obj.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "".join(parts)


def output_calls(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        item
        for item in obj.get("output") or []
        if isinstance(item, dict) and item.get("type") == "function_call"
    ]


def usage_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    usage = obj.get("usage")
    return usage if isinstance(usage, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cut(obj: dict[str, Any], limit: int | None = None) -> bool:
    """Whether the answer was cut by max_output_tokens: marked incomplete, or (on a server
    that marks every answer completed, as llama.cpp does) as many tokens as the limit."""
    details = obj.get("incomplete_details")
    if obj.get("status") == "incomplete" or (
        isinstance(details, dict) and details.get("reason") == "max_output_tokens"
    ):
        return True
    used = _int((usage_of(obj) or {}).get("output_tokens"))
    return limit is not None and used is not None and used >= limit


def _ok(status: str, summary: str, reply: Reply, shown: Any = None) -> Outcome:
    snippet = short(shown if shown is not None else output_text(reply.obj) or reply.obj)
    return Outcome(status, summary, 200, None, snippet, reply.sent)


async def _post(ctx: Context, body: dict[str, Any]) -> Reply:
    return await once(ctx, body, path=PATH)


def _not_a_response(reply: Reply) -> Outcome | None:
    if not isinstance(reply.obj.get("output"), list):
        return _ok(DIFFERENT, "Answered 200 without an output list", reply, reply.obj)
    return None


async def probe_responses(ctx: Context) -> Outcome:
    """``POST /responses`` with text input: a message item with output_text is
    supported; a 404/405 (no such route) or another 4xx is unsupported."""
    reply = await _post(ctx, responses_body(ctx, CHAT_PROMPT))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="POST /responses", missing_path=True)
    if (problem := _not_a_response(reply)) is not None:
        return problem
    text = output_text(reply.obj)
    if not text and not _cut(reply.obj):
        return _ok(DIFFERENT, "Answered without an output_text", reply, reply.obj)
    status = reply.obj.get("status")
    return _ok(SUPPORTED, f"Answered with output_text (status {status})", reply)


async def probe_responses_stream(ctx: Context) -> Outcome:
    """``stream: true``: typed events from response.created to response.completed (or
    incomplete), text in response.output_text.delta, each event with a sequence_number
    that counts up, is supported; a missing sequence_number or output_index, or events out
    of that order, behave differently."""
    body = responses_body(ctx, CHAT_PROMPT, stream=True)
    result = await stream(ctx, body, path=PATH)
    error = result.error
    if error is not None and not result.answered:
        return refused(error, result.sent, what="a streamed /responses request", missing_path=True)
    events = result.chunks()
    kinds = [e.get("type") for e in events]
    snippet = short(result.text)
    facts: dict[str, Any] = {"events": len(events), "ttft_ms": result.ttft_ms}
    if error is not None:
        return Outcome(DIFFERENT, f"The stream broke: {short(error.message, 120)}", None,
                       error_evidence(error), snippet, result.sent, facts)  # fmt: skip
    problems = []
    if not kinds or kinds[0] != "response.created":
        problems.append(f"it starts with {kinds[0] if kinds else 'nothing'}")
    if not kinds or kinds[-1] not in ENDS:
        problems.append("no response.completed at the end")
    if "response.output_text.delta" not in kinds:
        problems.append("no response.output_text.delta")
    numbers = [e.get("sequence_number") for e in events]
    if any(_int(n) is None for n in numbers):
        problems.append("no sequence_number")
    elif numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        problems.append("sequence_number out of order")
    indexed = [e for e in events if e.get("type", "").startswith("response.output_")]
    if indexed and any("output_index" not in e for e in indexed):
        problems.append("no output_index on output events")
    facts["types"] = sorted({k for k in kinds if isinstance(k, str)})
    if problems:
        summary = "Streams typed events, but " + ", ".join(problems)
        return Outcome(DIFFERENT, summary, 200, None, snippet, result.sent, facts)
    summary = f"{_plural(len(events), 'typed event')} in order, numbered"
    return Outcome(SUPPORTED, summary, 200, None, snippet, result.sent, facts)


async def probe_responses_usage(ctx: Context) -> Outcome:
    """A streamed request's response.completed carrying usage (input_tokens and
    output_tokens) is supported; without it, different."""
    result = await stream(ctx, responses_body(ctx, CHAT_PROMPT, stream=True), path=PATH)
    error = result.error
    if error is not None and not result.answered:
        return refused(error, result.sent, what="a streamed /responses request", missing_path=True)
    ends = [e for e in result.chunks() if e.get("type") in ENDS]
    response = ends[-1].get("response") if ends else None
    usage = usage_of(response) if isinstance(response, dict) else None
    if not ends:
        return Outcome(DIFFERENT, "No response.completed event", 200, None,
                       short(result.text), result.sent)  # fmt: skip
    if (
        usage is None
        or _int(usage.get("input_tokens")) is None
        or (_int(usage.get("output_tokens")) is None)
    ):
        return Outcome(DIFFERENT, "response.completed without usage (input/output tokens)",
                       200, None, short(response or {}), result.sent)  # fmt: skip
    details = usage.get("output_tokens_details")
    reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    summary = f"usage: {usage['input_tokens']} in, {usage['output_tokens']} out"
    if reasoning is not None:
        summary += f" ({reasoning} reasoning)"
    return Outcome(SUPPORTED, summary, 200, None, short(usage), result.sent,
                   {"usage": usage})  # fmt: skip


def _tools_probe(choice: str) -> Callable[[Context], Awaitable[Outcome]]:
    async def probe(ctx: Context) -> Outcome:
        """Flat function tools: a function_call item naming get_weather with JSON
        arguments is supported; text instead is different under "required" (can't tell
        under "auto", where text is allowed); a refusal is unsupported."""
        prompt = TOOL_PROMPT if choice == "auto" else "Say hello."
        body = responses_body(
            ctx, prompt, limit=TOOL_LIMIT, tools=[FLAT_WEATHER], tool_choice=choice
        )
        reply = await _post(ctx, body)
        if reply.error is not None:
            return refused(
                reply.error,
                reply.sent,
                what=f'tools with tool_choice "{choice}"',
                missing_path=True,
            )
        if (problem := _not_a_response(reply)) is not None:
            return problem
        calls = output_calls(reply.obj)
        if not calls:
            if _cut(reply.obj, TOOL_LIMIT * ctx.budget):
                return _ok(INCONCLUSIVE, "No call: the answer was cut by the token limit", reply)
            if choice == "auto":
                return _ok(INCONCLUSIVE, AUTO_TEXT, reply)
            return _ok(DIFFERENT, 'Answered in text although tool_choice is "required"', reply)
        first = calls[0]
        value, problem = parsed_json(first.get("arguments") or "")
        shown = [{k: c.get(k) for k in ("name", "call_id", "arguments")} for c in calls]
        if first.get("name") != "get_weather" or not first.get("call_id"):
            return _ok(DIFFERENT, "A function_call without the tool's name or a call_id",
                       reply, shown)  # fmt: skip
        if problem is not None or not isinstance(value, dict):
            if len(calls) > 1 or _cut(reply.obj, TOOL_LIMIT * ctx.budget):
                return _ok(INCONCLUSIVE, "A call cut by the token limit", reply, shown)
            return _ok(DIFFERENT, "A function_call whose arguments are not JSON", reply, shown)
        return _ok(SUPPORTED, f"{_plural(len(calls), 'function_call item')} with a call_id",
                   reply, shown)  # fmt: skip

    return probe


async def probe_responses_json_schema(ctx: Context) -> Outcome:
    """``text.format`` json_schema: output that validates is supported; other text is
    different (can't tell when the token limit cut it); a refusal is unsupported."""
    fmt = {"type": "json_schema", "name": "city", "strict": True, "schema": SCHEMA}
    body = responses_body(ctx, SCHEMA_PROMPT, limit=JSON_LIMIT, text={"format": fmt})
    reply = await _post(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="text.format json_schema", missing_path=True)
    if (problem := _not_a_response(reply)) is not None:
        return problem
    text = output_text(reply.obj)
    value, problem = parsed_json(text)
    if problem is not None:
        if _cut(reply.obj, JSON_LIMIT * ctx.budget) and text.lstrip().startswith("{"):
            return _ok(INCONCLUSIVE, "JSON cut by the token limit", reply)
        return _ok(DIFFERENT, "Accepted, but the output is not JSON (text.format ignored)",
                   reply)  # fmt: skip
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(value), key=str)
    if errors:
        summary = f"JSON, but not valid against the schema: {short(errors[0].message, 120)}"
        return _ok(DIFFERENT, summary, reply)
    return _ok(SUPPORTED, "The output validates against the schema", reply)


async def probe_responses_chain(ctx: Context) -> Outcome:
    """``previous_response_id``: a stored first response, then the next turn chained to
    it and the same turn alone. Refused is unsupported; accepted is supported when the
    server added the earlier turn (more input tokens than alone, or the code word back),
    different when it answered as if alone (accepted but ignored)."""
    first = await _post(ctx, responses_body(ctx, REMEMBER_PROMPT, store=True))
    if first.error is not None:
        return refused(first.error, first.sent, what="a stored first response", missing_path=True)
    first_id = first.obj.get("id")
    if not isinstance(first_id, str) or not first_id:
        return _ok(DIFFERENT, "The first response has no id to chain to", first, first.obj)
    chained = await _post(
        ctx, responses_body(ctx, RECALL_PROMPT, previous_response_id=first_id, store=True)
    )
    sent = chained.sent.replace(first_id, first_id[:24] + "…")
    if chained.error is not None:
        outcome = refused(chained.error, sent, what="previous_response_id", missing_path=True)
        outcome.facts["chain"] = "refused"
        return outcome
    alone = await _post(ctx, responses_body(ctx, RECALL_PROMPT))
    chained_in = _int((usage_of(chained.obj) or {}).get("input_tokens"))
    alone_in = _int((usage_of(alone.obj) or {}).get("input_tokens"))
    text = output_text(chained.obj)
    facts = {"input_tokens": {"chained": chained_in, "alone": alone_in}}
    outcome = Outcome(SUPPORTED, "", 200, None, short(text), sent, facts)
    if chained_in is not None and alone_in is not None:
        if chained_in > alone_in:
            outcome.summary = (
                f"Accepted and honoured: {chained_in} input tokens chained, {alone_in} alone"
            )
            return outcome
        outcome.status = DIFFERENT
        outcome.summary = (
            f"Accepted but ignored: {chained_in} input tokens chained, {alone_in} alone "
            "(the earlier turn was not added)"
        )
        return outcome
    if CODE_WORD.lower() in text.lower():
        outcome.summary = "Accepted and honoured: the code word came back"
        return outcome
    outcome.status = INCONCLUSIVE
    outcome.summary = "Accepted; no usage to compare, and the code word did not come back"
    return outcome


async def probe_responses_store(ctx: Context) -> Outcome:
    """``store: true``, then ``GET /responses/{id}``: the same response back is
    supported; a 404 (nothing kept, or no such route) is unsupported."""
    first = await _post(ctx, responses_body(ctx, CHAT_PROMPT, store=True))
    if first.error is not None:
        return refused(first.error, first.sent, what="store: true", missing_path=True)
    response_id = first.obj.get("id")
    if not isinstance(response_id, str) or not response_id:
        return _ok(DIFFERENT, "The response has no id to get back", first, first.obj)
    path = f"{PATH}/{response_id}"
    sent = f"GET responses/{response_id[:24]}…"
    try:
        response, raw = await upstream_client._fetch(ctx.endpoint, "GET", path)
    except UpstreamFailure as exc:
        error = exc.error
        if error.status in (404, 405):
            summary = (
                f"Not kept: GET /responses/{{id}} answered HTTP {error.status}: "
                f"{short(error.message, 120)}"
            )
            return Outcome(UNSUPPORTED, summary, error.status, error_evidence(error), sent=sent)
        return refused(error, sent, what="GET /responses/{id}", missing_path=True)
    obj, problem = parsed_json(upstream_client._decode(raw, response))
    is_response = isinstance(obj, dict) and obj.get("object") == "response"
    if is_response and obj.get("id") and obj["id"] != response_id:
        summary = "GET /responses/{id} gives a response back, under another id"
        return Outcome(DIFFERENT, summary, 200, None, short(output_text(obj) or obj), sent)
    if problem is not None or not isinstance(obj, dict) or obj.get("id") != response_id:
        snippet = short(raw.decode(errors="replace"))
        return Outcome(DIFFERENT, "GET /responses/{id} answered, but not with that response",
                       response.status_code, None, snippet, sent)  # fmt: skip
    return Outcome(SUPPORTED, "Kept: GET /responses/{id} gives it back", 200, None,
                   short(output_text(obj) or obj), sent)  # fmt: skip


async def probe_responses_reasoning(ctx: Context) -> Outcome:
    """``reasoning: {effort, summary}``: a reasoning item in the output is supported; a
    refusal is unsupported; none is can't tell (the model may not reason)."""
    body = responses_body(ctx, CHAT_PROMPT, limit=TOOL_LIMIT,
                          reasoning={"effort": "low", "summary": "auto"})  # fmt: skip
    reply = await _post(ctx, body)
    if reply.error is not None:
        return refused(
            reply.error, reply.sent, what="reasoning effort and summary", missing_path=True
        )
    if (problem := _not_a_response(reply)) is not None:
        return problem
    items = [i for i in reply.obj["output"] if isinstance(i, dict) and i.get("type") == "reasoning"]
    if not items:
        return _ok(INCONCLUSIVE, "Accepted; no reasoning item (the model may not reason)", reply)
    item = items[0]
    has = [k for k in ("summary", "content", "encrypted_content") if item.get(k)]
    summary = "A reasoning item" + (f" with {', '.join(has)}" if has else ", empty")
    return _ok(SUPPORTED, summary, reply, json.dumps(item)[:200])


async def probe_responses_max_output(ctx: Context) -> Outcome:
    """``max_output_tokens``: at most that many output tokens and the response marked
    incomplete (reason max_output_tokens) is supported; a longer answer, or one cut but
    marked completed, is different."""
    reply = await _post(ctx, responses_body(ctx, COUNT_PROMPT, limit=LIMIT))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="max_output_tokens", missing_path=True)
    if (problem := _not_a_response(reply)) is not None:
        return problem
    used = _int((usage_of(reply.obj) or {}).get("output_tokens"))
    status = reply.obj.get("status")
    if used is None:
        return _ok(INCONCLUSIVE, "No usage.output_tokens to compare with the limit", reply)
    if used > LIMIT:
        return _ok(DIFFERENT, f"Ignored: {used} output tokens for a limit of {LIMIT}", reply)
    if used < LIMIT and not _cut(reply.obj):
        return _ok(INCONCLUSIVE, f"It stopped by itself after {used} tokens, before the limit",
                   reply)  # fmt: skip
    if not _cut(reply.obj):
        return _ok(DIFFERENT, f"Honoured ({used} tokens), but the response says {status}, "
                   "not incomplete", reply)  # fmt: skip
    return _ok(SUPPORTED, f"Honoured: {used} output tokens, status {status}", reply)
