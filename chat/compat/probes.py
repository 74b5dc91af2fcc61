"""The probes of a compatibility check, one per feature, in the order of the report.

How each decides its status is in its docstring; ``base`` says what the statuses mean.
"""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from base64 import b64encode
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema

from chat.upstream import Finish, ToolCallDelta, UpstreamFailure, Usage, chat_once
from chat.upstream import client as upstream_client

from .base import (
    DIFFERENT,
    INCONCLUSIVE,
    LIMIT,
    NOT_ABOUT_THE_FEATURE,
    SUPPORTED,
    UNSUPPORTED,
    Context,
    Outcome,
    Probe,
    Reply,
    chat_body,
    choice_of,
    describe,
    error_evidence,
    once,
    parsed_json,
    refused,
    short,
    stream,
)

JSON_LIMIT = 48  # room for a small JSON object
TOOL_LIMIT = 64  # room for one or two tool calls
BAD_MODEL = "playground-compat-probe-no-such-model"
CUT_BY_LIMIT = ", cut by the token limit: can't tell"
AUTO_TEXT = "Answered in text, which tool_choice auto allows: can't tell (see the required row)"

CHAT_PROMPT = "Reply with the single word: OK"
COUNT_PROMPT = "Count from 1 to 100, separated by spaces."
STOP_PROMPT = "Continue this list: 1, 2, 3, 4, 5"
SEED_PROMPT = "Write one short sentence about the sea."
JSON_PROMPT = 'Reply with a JSON object with one key "answer" holding a one-word greeting.'
SCHEMA_PROMPT = "Give as JSON the capital city and the population of France."
TOOL_PROMPT = "Use the get_weather tool to get the weather in Paris."
PARALLEL_PROMPT = "Use both tools at once: get_weather for Paris and get_time for Tokyo."
ROLE_PROMPT = "You are terse. Answer in one word."

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def _tool(name: str, description: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = _tool("get_weather", "The current weather in a city")
CLOCK = _tool("get_time", "The local time in a city")


def _png_1x1() -> bytes:
    """A valid 1x1 red PNG."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG_DATA_URL = "data:image/png;base64," + b64encode(_png_1x1()).decode()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ok(status: str, summary: str, reply: Reply, snippet: Any = None, **facts: Any) -> Outcome:
    shown = short(reply.text if snippet is None else snippet)
    return Outcome(status, summary, 200, None, shown, reply.sent, facts)


# --------------------------------------------------------------------------- basics


async def probe_models(ctx: Context) -> Outcome:
    """``GET /models``: OpenAI's ``{"data": [{"id"}]}`` is supported; a bare list or
    Ollama's ``{"models": [...]}`` (both readable here) behave differently; no list, or a
    404/405, is unsupported."""
    sent = "GET models"
    try:
        # The client's own GET (timeouts, URL guard, errors): list_models() keeps only the
        # ids, and the shape is what this probe reports.
        response, raw = await upstream_client._fetch(ctx.endpoint, "GET", "models")
    except UpstreamFailure as exc:
        return refused(exc.error, sent, what="GET /models", missing_path=True)
    text = upstream_client._decode(raw, response)
    snippet = short(text)
    obj, problem = parsed_json(text)
    if problem is not None:
        return Outcome(UNSUPPORTED, "/models answered with something that is not JSON",
                       response.status_code, None, snippet, sent)  # fmt: skip
    ids = upstream_client._model_ids(obj) or []
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        shape, status = '{"data": [...]} (OpenAI)', SUPPORTED
        if not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in obj["data"]):
            shape, status = '{"data": [...]} without an "id" on every model', DIFFERENT
    elif isinstance(obj, dict) and isinstance(obj.get("models"), list):
        shape, status = '{"models": [...]} (Ollama)', DIFFERENT
    elif isinstance(obj, list):
        shape, status = "a bare list", DIFFERENT
    else:
        return Outcome(UNSUPPORTED, "/models answered without a model list",
                       response.status_code, None, snippet, sent)  # fmt: skip
    summary = f"{_plural(len(ids), 'model')}, shaped {shape}"
    if ctx.model and ids and ctx.model not in ids:
        summary += f"; {ctx.model} is not listed"
    facts = {"shape": shape, "models": ids[:50], "count": len(ids)}
    return Outcome(status, summary, response.status_code, None, snippet, sent, facts)


async def probe_chat(ctx: Context) -> Outcome:
    """A plain request: supported when the answer has choices[0].message.content as text,
    a finish_reason and usage; each missing piece makes it behave differently."""
    reply = await once(ctx, chat_body(ctx, CHAT_PROMPT))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="a plain chat request")
    content = reply.message.get("content")
    problems = []
    if not reply.choice:
        problems.append("no choices")
    elif isinstance(content, list):
        problems.append("content comes as a list of parts")
    elif not isinstance(content, str):
        problems.append("no text content")
    if reply.choice and not reply.finish_reason:
        problems.append("no finish_reason")
    if not isinstance(reply.obj.get("usage"), dict):
        problems.append("no usage")
    if problems:
        return _ok(DIFFERENT, "Answered, but " + ", ".join(problems), reply)
    summary = f"Answered (finish_reason {reply.finish_reason}, usage included)"
    return _ok(SUPPORTED, summary, reply)


async def probe_stream(ctx: Context) -> Outcome:
    """``stream: true`` without stream_options: supported when text arrives in chunks with
    a finish_reason and ``[DONE]``; one JSON document, or no finish/[DONE], is different."""
    result = await stream(ctx, chat_body(ctx, CHAT_PROMPT, stream=True))
    error = result.error
    if error is not None and not result.answered:
        return refused(error, result.sent, what="streaming")
    snippet = short(result.text)
    facts = {"chunks": len(result.raw), "ttft_ms": result.ttft_ms}
    if error is not None:
        summary = f"The stream broke: {short(error.message, 120)}"
        return Outcome(DIFFERENT, summary, None, error_evidence(error), snippet, result.sent,
                       facts)  # fmt: skip
    chunks = result.chunks()
    if len(result.raw) == 1 and chunks and isinstance(choice_of(chunks[0]).get("message"), dict):
        return Outcome(DIFFERENT, "Answered with one JSON document, not an event stream", 200,
                       None, snippet, result.sent, facts)  # fmt: skip
    problems = []
    if not any(choice_of(c).get("finish_reason") for c in chunks):
        problems.append("no finish_reason")
    if not result.raw or result.raw[-1].strip() != "[DONE]":
        problems.append("no [DONE] at the end")
    detail = _plural(sum(1 for c in chunks if choice_of(c).get("delta")), "chunk")
    if result.ttft_ms is not None:
        detail += f", first token after {result.ttft_ms} ms"
    if problems:
        return Outcome(DIFFERENT, f"Streamed ({detail}) but " + ", ".join(problems), 200,
                       None, snippet, result.sent, facts)  # fmt: skip
    return Outcome(SUPPORTED, f"Streamed: {detail}, ends with [DONE]", 200, None, snippet,
                   result.sent, facts)  # fmt: skip


async def probe_stream_usage(ctx: Context) -> Outcome:
    """``stream_options.include_usage``: supported when usage arrives in a final chunk
    with empty choices (OpenAI's way); on a chunk with choices, or not at all, different;
    a refusal is unsupported (the setting should be off)."""
    body = chat_body(ctx, CHAT_PROMPT, stream=True, stream_options={"include_usage": True})
    result = await stream(ctx, body)
    if result.error is not None and not result.answered:
        return refused(result.error, result.sent, what="stream_options")
    usage = next((e for e in result.events if isinstance(e, Usage)), None)
    carrier = next((c for c in result.chunks() if isinstance(c.get("usage"), dict)), None)
    if usage is None or carrier is None:
        return Outcome(DIFFERENT, "Accepted, but no usage was sent", 200, None,
                       short(result.text), result.sent, {"usage": False})  # fmt: skip
    snippet = short(carrier["usage"])
    facts = {"usage": True}
    if carrier.get("choices"):
        return Outcome(DIFFERENT, "Usage arrives on a chunk that also carries choices", 200,
                       None, snippet, result.sent, facts)  # fmt: skip
    return Outcome(SUPPORTED, "Usage arrives in a final chunk with no choices", 200, None,
                   snippet, result.sent, facts)  # fmt: skip


def _limit_probe(name: str) -> Callable[[Context], Awaitable[Outcome]]:
    async def probe(ctx: Context) -> Outcome:
        """``max_tokens`` / ``max_completion_tokens`` = 16 on a long answer: honoured
        (finish_reason length, or at most 16 tokens) is supported; more tokens than the
        limit is different (ignored); a refusal is unsupported."""
        body = {"model": ctx.model, "messages": [{"role": "user", "content": COUNT_PROMPT}]}
        body[name] = LIMIT
        reply = await once(ctx, body)
        if reply.error is not None:
            return refused(reply.error, reply.sent, what=name)
        tokens, reason = reply.completion_tokens, reply.finish_reason
        facts = {"completion_tokens": tokens, "finish_reason": reason}
        if tokens is not None and tokens > LIMIT:
            summary = f"Accepted but ignored: {tokens} tokens for a limit of {LIMIT}"
            return _ok(DIFFERENT, summary, reply, **facts)
        if reason == "length" or tokens is not None:
            shown = _plural(tokens, "token") if tokens is not None else "no usage"
            return _ok(SUPPORTED, f"Honoured: finish_reason {reason}, {shown}", reply, **facts)
        words = len(reply.text.split())
        if words > LIMIT * 2:
            return _ok(DIFFERENT, f"Accepted but apparently ignored: {words} words", reply)
        summary = f"Accepted (finish_reason {reason}; no usage to count tokens)"
        return _ok(SUPPORTED, summary, reply, **facts)

    return probe


async def probe_stop(ctx: Context) -> Outcome:
    """``stop: [","]`` on a prompt whose answer has commas: a comma in the text is
    different (ignored). No comma proves something only when the same prompt without
    ``stop`` does answer with a comma (a short answer may have none anyway): then it is
    supported, else, or when cut by the token limit, can't tell."""
    reply = await once(ctx, chat_body(ctx, STOP_PROMPT, stop=[","]))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="stop")
    if "," in reply.text:
        return _ok(DIFFERENT, 'The stop sequence "," is in the answer: stop was ignored', reply)
    if reply.finish_reason == "length":
        return _ok(INCONCLUSIVE, "The answer hit the token limit before any comma", reply)
    free = await once(ctx, chat_body(ctx, STOP_PROMPT))
    shown = f"{short(reply.text, 95)} | without stop: {short(free.text, 95)}"
    if free.error is not None:
        summary = f"No comma, but the same prompt without stop failed: {short(free.error.message)}"
        return _ok(INCONCLUSIVE, summary, reply, shown)
    if "," not in free.text:
        summary = 'No "," in the answer, but none without stop either: nothing to stop'
        return _ok(INCONCLUSIVE, summary, reply, shown)
    summary = f'Stopped before "," (finish_reason {reply.finish_reason}), which it has without stop'
    return _ok(SUPPORTED, summary, reply, shown)


async def probe_n(ctx: Context) -> Outcome:
    """``n: 2``: two choices is supported, any other count different."""
    reply = await once(ctx, chat_body(ctx, SEED_PROMPT, n=2))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="n=2")
    choices = reply.obj.get("choices")
    count = len(choices) if isinstance(choices, list) else 0
    if count == 2:
        return _ok(SUPPORTED, "Two choices for n=2", reply)
    return _ok(DIFFERENT, f"{_plural(count, 'choice')} for n=2", reply, choices=count)


async def probe_seed(ctx: Context) -> Outcome:
    """The same seed twice, then other seeds, then the same seed twice at once (this probe
    runs when nothing else of the check does): the same text every time for the one seed
    and another text for another seed is supported; two different texts for one seed is
    different, also when they differ only when sent at once (llama.cpp batches concurrent
    requests, which changes the numbers). When every seed gives the same text (greedy
    decoding, a fixed reply) the seed made no difference that could be seen: can't tell."""
    texts = []
    sent = ""
    # The same seed twice, then other seeds until one answers differently (short answers
    # often start alike, so one other seed is not always enough to tell).
    for seed in (4242, 4242, 4243, 4244):
        reply = await once(ctx, chat_body(ctx, SEED_PROMPT, seed=seed))
        sent = sent or reply.sent
        if reply.error is not None:
            return refused(reply.error, reply.sent, what="seed")
        texts.append(reply.text)
        if len(texts) == 2 and texts[0] != texts[1]:
            snippet = f"{short(texts[0], 95)} | {short(texts[1], 95)}"
            return Outcome(DIFFERENT, "The same seed gave two different answers", 200, None,
                           snippet, sent)  # fmt: skip
        if len(texts) > 2 and texts[-1] != texts[0]:
            break
    else:
        summary = "Every seed gave the same answer: the seed changed nothing that could be seen"
        return Outcome(INCONCLUSIVE, summary, 200, None, short(texts[0]), sent)
    for _ in range(2):  # whether batched requests change the text is a matter of timing
        together = await asyncio.gather(
            *(once(ctx, chat_body(ctx, SEED_PROMPT, seed=4242)) for _ in range(2))
        )
        failed = next((r.error for r in together if r.error is not None), None)
        if failed is not None:
            summary = f"Same seed, same answer one at a time; two at once failed: {failed.message}"
            return Outcome(INCONCLUSIVE, short(summary), 200, None, short(texts[0]), sent)
        odd = [r.text for r in together if r.text != texts[0]]
        if odd:
            break
    if odd:
        summary = (
            "The same seed gave the same answer one request at a time, but another one "
            "when two were sent at once"
        )
        snippet = f"{short(texts[0], 95)} | at once: {short(odd[0], 95)}"
        return Outcome(DIFFERENT, summary, 200, None, snippet, sent)
    summary = "The same seed gave the same answer, also two at once; another seed a different one"
    return Outcome(SUPPORTED, summary, 200, None, short(texts[0]), sent)


async def probe_logprobs(ctx: Context) -> Outcome:
    """``logprobs: true, top_logprobs: 2``: supported when choices[0].logprobs.content
    lists tokens with logprob and top_logprobs; accepted without them is different."""
    reply = await once(ctx, chat_body(ctx, CHAT_PROMPT, logprobs=True, top_logprobs=2))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="logprobs")
    logprobs = reply.choice.get("logprobs")
    if not isinstance(logprobs, dict) or not logprobs:
        return _ok(DIFFERENT, "Accepted, but no logprobs came back", reply)
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return _ok(DIFFERENT, "logprobs without a content list", reply, logprobs)
    first = content[0] if isinstance(content[0], dict) else {}
    top = first.get("top_logprobs")
    if not isinstance(first.get("logprob"), int | float) or not isinstance(top, list):
        return _ok(DIFFERENT, "logprobs entries lack logprob or top_logprobs", reply, content[0])
    summary = f"{_plural(len(content), 'token')} with logprobs, {len(top)} alternatives each"
    return _ok(SUPPORTED, summary, reply, content[:2])


async def probe_json_object(ctx: Context) -> Outcome:
    """``response_format: json_object``: a JSON object is supported; other text is
    different (can't tell when the token limit cut it)."""
    body = chat_body(ctx, JSON_PROMPT, limit=JSON_LIMIT, response_format={"type": "json_object"})
    reply = await once(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="response_format json_object")
    value, problem = parsed_json(reply.text)
    if problem is None and isinstance(value, dict):
        return _ok(SUPPORTED, "The answer is a JSON object", reply)
    if reply.finish_reason == "length":
        return _ok(INCONCLUSIVE, "The answer was cut by the token limit", reply)
    why = "not valid JSON" if problem else "JSON, but not an object"
    return _ok(DIFFERENT, f"Accepted, but the answer is {why}", reply)


async def probe_json_schema(ctx: Context) -> Outcome:
    """``response_format: json_schema`` (strict): an answer valid against the schema
    (checked with jsonschema) is supported; invalid JSON or a schema violation is
    different."""
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "city", "strict": True, "schema": SCHEMA},
    }
    body = chat_body(ctx, SCHEMA_PROMPT, limit=JSON_LIMIT, response_format=response_format)
    reply = await once(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="response_format json_schema")
    value, problem = parsed_json(reply.text)
    if problem is not None:
        if reply.finish_reason == "length":
            return _ok(INCONCLUSIVE, "The answer was cut by the token limit", reply)
        return _ok(DIFFERENT, "Accepted, but the answer is not valid JSON", reply)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(value), key=str)
    if errors:
        summary = f"JSON, but not valid against the schema: {short(errors[0].message, 120)}"
        return _ok(DIFFERENT, summary, reply)
    return _ok(SUPPORTED, "The answer validates against the schema", reply)


# --------------------------------------------------------------------------- tools


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    calls = reply.message.get("tool_calls")
    out = []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            out.append({"name": fn.get("name"), "arguments": fn.get("arguments")})
    legacy = reply.message.get("function_call")
    if not out and isinstance(legacy, dict):
        out.append({"name": legacy.get("name"), "arguments": legacy.get("arguments")})
    return out


def _json_args(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    value, problem = parsed_json(arguments) if isinstance(arguments, str) else (None, "")
    return value if problem is None else None


def _tool_probe(
    *,
    tools: list[dict[str, Any]],
    prompt: str,
    choice: Any,
    want: int,
    what: str,
    at_most: int | None = None,
    control: dict[str, Any] | None = None,
    **extra: Any,
) -> Callable[[Context], Awaitable[Outcome]]:
    named = choice["function"]["name"] if isinstance(choice, dict) else None

    async def probe(ctx: Context) -> Outcome:
        """Tools offered with a tool_choice: supported when the answer calls them (``want``
        calls at once) with JSON arguments; fewer calls, or arguments that are not JSON,
        is different, and so is a text answer to tool_choice "required" (under "auto" the
        model may answer in text: can't tell); can't tell either when the token limit cut
        the answer; a refusal is unsupported. A tool_choice naming a function makes a call
        to another function (or a text answer) different; ``at_most`` (with
        ``parallel_tool_calls: false``) makes more calls than that different, and no call
        at all can't tell (there was nothing to count); as few calls as that is supported
        only when the same request with ``control`` (``parallel_tool_calls: true``) gets
        more (a small model may make one call anyway): else can't tell."""
        body = chat_body(ctx, prompt, limit=TOOL_LIMIT, tools=tools, tool_choice=choice,
                         **extra)  # fmt: skip
        reply = await once(ctx, body)
        if reply.error is not None:
            return refused(reply.error, reply.sent, what=what)
        calls = _tool_calls(reply)
        # Like the JSON probes: an answer the token limit cut says nothing about the
        # feature (the call may have been on its way), so it is "can't tell", not different.
        status = INCONCLUSIVE if reply.finish_reason == "length" else DIFFERENT
        cut = CUT_BY_LIMIT if status == INCONCLUSIVE else ""
        if not calls:
            if choice == "auto" and not cut:
                # The model may answer in text under "auto": nothing to conclude (a server
                # that ignores tools shows in the "required" row).
                return _ok(INCONCLUSIVE, AUTO_TEXT, reply, calls=0)
            if at_most is not None:
                summary = "Answered in text, without a tool call: no calls to count" + cut
                return _ok(INCONCLUSIVE, summary, reply, calls=0)
            return _ok(status, "Answered in text, without a tool call" + cut, reply, calls=0)
        names = {t["function"]["name"] for t in tools}
        if named is not None:
            # A whole call to another offered function: the naming was ignored, cut or not.
            others = [c for c in calls if c["name"] != named and c["name"] in names
                      and _json_args(c["arguments"]) is not None]  # fmt: skip
            if others:
                summary = f"Called {others[0]['name']}, not {named} that tool_choice names"
                return _ok(DIFFERENT, summary, reply, calls, calls=len(calls))
            names = {named}
        if at_most is not None and len(calls) > at_most:
            shown = ", ".join(str(c["name"]) for c in calls)
            summary = f"{_plural(len(calls), 'tool call')} ({shown}) where {what} allows {at_most}"
            return _ok(DIFFERENT, summary, reply, calls, calls=len(calls))
        bad = [c for c in calls if c["name"] not in names or _json_args(c["arguments"]) is None]
        if bad and cut and len(calls) - len(bad) >= want:
            # Enough whole calls, then one the limit cut (llama.cpp keeps calling).
            whole = ", ".join(str(c["name"]) for c in calls if c not in bad)
            summary = f"Called {whole} with JSON arguments; a further call was cut by the limit"
            return _ok(SUPPORTED, summary, reply, calls, calls=len(calls) - len(bad))
        if bad:
            summary = "A tool call with an unknown name or arguments that are not JSON" + cut
            return _ok(status, summary, reply, calls, calls=len(calls))
        if len(calls) < want:
            summary = f"{_plural(len(calls), 'tool call')} where {want} were asked for at once"
            if choice == "auto" and not cut:
                # How many calls to make is the model's choice too.
                summary += ", which tool_choice auto allows: can't tell"
                return _ok(INCONCLUSIVE, summary, reply, calls, calls=len(calls))
            return _ok(status, summary + cut, reply, calls, calls=len(calls))
        shown = ", ".join(str(c["name"]) for c in calls)
        if at_most is not None and control is not None:
            return await _more_without(ctx, body, reply, calls, at_most, control)
        return _ok(SUPPORTED, f"Called {shown} with JSON arguments", reply, calls,
                   calls=len(calls))  # fmt: skip

    return probe


async def _more_without(
    ctx: Context,
    body: dict[str, Any],
    reply: Reply,
    calls: list[dict[str, Any]],
    at_most: int,
    control: dict[str, Any],
) -> Outcome:
    """``calls`` kept within ``at_most``: whether the limit did it, by the same request
    with ``control`` instead (supported when that gets more calls)."""
    free = await once(ctx, {**body, **control})
    other = _tool_calls(free) if free.error is None else []
    flag = ", ".join(f"{k} {str(v).lower()}" for k, v in control.items())
    shown = f"{short(calls, 95)} | with {flag}: {short(other or free.text, 95)}"
    called = ", ".join(str(c["name"]) for c in calls)
    facts = {"calls": len(calls), "control_calls": len(other)}
    if len(other) > at_most:
        summary = f"Called only {called}; with {flag} the same request gets {len(other)} calls"
        return _ok(SUPPORTED, summary, reply, shown, **facts)
    if free.error is not None:
        why = f"failed: {short(free.error.message, 80)}"
    else:
        why = f"gets {_plural(len(other), 'call')} too"
    summary = f"Called only {called}, but with {flag} the same request {why}: can't tell"
    return _ok(INCONCLUSIVE, summary, reply, shown, **facts)


async def probe_tool_stream(ctx: Context) -> Outcome:
    """Two tool calls streamed: supported when every fragment carries an ``index`` and
    each index belongs to one call id; fragments without an index, or one index reused by
    calls with different ids (both seen in real servers), are different; fragments that do
    not join into JSON are different too unless the token limit cut the answer (can't
    tell); no fragments at all (a text answer, which tool_choice auto allows): can't
    tell."""
    body = chat_body(ctx, PARALLEL_PROMPT, limit=TOOL_LIMIT, tools=[WEATHER, CLOCK],
                     tool_choice="auto", stream=True)  # fmt: skip
    result = await stream(ctx, body)
    if result.error is not None and not result.answered:
        return refused(result.error, result.sent, what="streamed tool calls")
    cut = any(isinstance(e, Finish) and e.choice == 0 and e.reason == "length"
              for e in result.events)  # fmt: skip
    # A call cut by the token limit is "can't tell", as in the one-shot tool probes.
    different, tail = (INCONCLUSIVE, CUT_BY_LIMIT) if cut else (DIFFERENT, "")
    fragments: list[dict[str, Any]] = []
    for chunk in result.chunks():
        delta = choice_of(chunk).get("delta")
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        fragments += [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    if not fragments:  # under tool_choice "auto" the model may answer in text
        summary = "No tool-call fragments were streamed" + (tail or f": {AUTO_TEXT.lower()}")
        return Outcome(INCONCLUSIVE, summary, 200, None, short(result.text), result.sent)
    missing = sum(1 for f in fragments if not isinstance(f.get("index"), int))
    ids: dict[int, set[str]] = {}
    for f in fragments:
        if isinstance(f.get("index"), int) and isinstance(f.get("id"), str) and f["id"]:
            ids.setdefault(f["index"], set()).add(f["id"])
    reused = sorted(i for i, found in ids.items() if len(found) > 1)
    joined: dict[int, str] = {}
    for event in result.events:
        if isinstance(event, ToolCallDelta):
            joined[event.index] = joined.get(event.index, "") + event.arguments
    calls = len({f["id"] for f in fragments if isinstance(f.get("id"), str)}) or len(joined)
    facts = {"fragments": len(fragments), "missing_index": missing, "reused": reused,
             "calls": calls}  # fmt: skip
    snippet = short(fragments[:4])
    problems = []
    if missing:
        problems.append(f"{missing} of {_plural(len(fragments), 'fragment')} carry no index")
    if reused:
        problems.append(f"index {', '.join(map(str, reused))} is reused by different calls")
    if problems:
        summary = "; ".join(problems) + " (calls must be told apart by id)"
        return Outcome(DIFFERENT, summary[0].upper() + summary[1:], 200, None, snippet,
                       result.sent, facts)  # fmt: skip
    if any(_json_args(args) is None for args in joined.values()):
        return Outcome(different, "The fragments of a call do not join into JSON" + tail, 200,
                       None, snippet, result.sent, facts)  # fmt: skip
    summary = f"{_plural(calls, 'call')} in {_plural(len(fragments), 'fragment')}, one index each"
    return Outcome(SUPPORTED, summary, 200, None, snippet, result.sent, facts)


# --------------------------------------------------------------------------- the rest


def _role_probe(role: str) -> Callable[[Context], Awaitable[Outcome]]:
    async def probe(ctx: Context) -> Outcome:
        """An instruction message in this role before the user's: accepted is supported,
        refused unsupported."""
        body = chat_body(ctx, "Say OK.")
        body["messages"].insert(0, {"role": role, "content": ROLE_PROMPT})
        reply = await once(ctx, body)
        if reply.error is not None:
            return refused(reply.error, reply.sent, what=f"the {role} role")
        return _ok(SUPPORTED, f"A {role} message is accepted", reply)

    return probe


# An error that says the server takes no images, whatever its status (llama.cpp without
# a vision projector answers HTTP 500 "image input is not supported").
NO_IMAGES = re.compile(
    r"\b(image|images|vision|multimodal)\b[^.]*\bnot (supported|enabled|available|allowed)"
    r"|\b(not|n't|never) (support|accept|take|handle)s?\b[^.]*\b(image|images|vision)\b",
    re.IGNORECASE,
)


async def probe_image(ctx: Context) -> Outcome:
    """A text part and a 1x1 PNG data URL part: accepted is supported, refused
    unsupported; so is a server error whose message says images are not supported."""
    parts = [
        {"type": "text", "text": "What colour is this image? Answer in one word."},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
    ]
    reply = await once(ctx, chat_body(ctx, parts), hide=(PNG_DATA_URL,))
    error = reply.error
    if error is not None and (error.status or 0) >= 500 and NO_IMAGES.search(error.message):
        summary = f"Refused an image part (HTTP {error.status}): {short(error.message, 160)}"
        return Outcome(UNSUPPORTED, summary, error.status, error_evidence(error),
                       sent=reply.sent, facts={"rejected": True})  # fmt: skip
    if error is not None:
        return refused(error, reply.sent, what="an image part")
    return _ok(SUPPORTED, "A 1x1 PNG as a data URL is accepted", reply)


async def probe_completions(ctx: Context) -> Outcome:
    """``POST /completions`` with a prompt: text in choices[0].text is supported; a 4xx
    (404 included: OpenAI's answer for chat-only models) is unsupported."""
    body: dict[str, Any] = {"model": ctx.model, "prompt": "Say OK:"}
    if ctx.limit_field:
        body[ctx.limit_field] = LIMIT
    reply = await once(ctx, body, path="completions")
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="/completions", missing_path=True)
    text = reply.choice.get("text")
    if not isinstance(text, str):
        return _ok(DIFFERENT, "Answered without choices[0].text", reply, reply.obj)
    return _ok(SUPPORTED, "Legacy completions answer with text", reply, text)


async def probe_error_shape(ctx: Context) -> Outcome:
    """A chat request for a model that does not exist: a 4xx with ``{"error": {"message",
    ...}}`` is supported (OpenAI's shape); any other body (other JSON, text, HTML) or a
    200 is different."""
    body = chat_body(ctx, "Hi", limit=1, model=BAD_MODEL)
    sent = describe("chat/completions", body) + f" (model {BAD_MODEL})"
    raw: list[str] = []
    try:
        obj = await chat_once(ctx.endpoint, body, raw=raw)
    except UpstreamFailure as exc:
        error = exc.error
    else:
        reply = Reply(obj, None, sent)
        return _ok(DIFFERENT, "Answered 200 for a model that does not exist", reply)
    if error.status is None or error.status >= 500 or error.status in NOT_ABOUT_THE_FEATURE:
        return refused(error, sent, what="")  # could not tell: auth, rate limit, outage
    text = raw[0] if raw else ""
    snippet = short(text)
    evidence = error_evidence(error)
    value, problem = parsed_json(text) if text.strip() else (None, "empty")
    where = f"HTTP {error.status}"
    facts = {"status": error.status}
    if problem is not None:
        summary = f"{where} with a body that is not JSON"
        return Outcome(DIFFERENT, summary, error.status, evidence, snippet, sent, facts)
    inner = value.get("error") if isinstance(value, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        keys = ", ".join(k for k in ("message", "type", "param", "code") if k in inner)
        summary = f'{where} with {{"error": {{{keys}}}}} (OpenAI shape)'
        return Outcome(SUPPORTED, summary, error.status, evidence, snippet, sent, facts)
    keys = ", ".join(list(value)[:5]) if isinstance(value, dict) else type(value).__name__
    summary = f"{where} with JSON that is not OpenAI's shape ({keys})"
    return Outcome(DIFFERENT, summary, error.status, evidence, snippet, sent, facts)


PROBES: tuple[Probe, ...] = (
    Probe("models", "Models list (GET /models)", probe_models, phase=1),
    Probe("chat", "Chat, not streamed", probe_chat),
    Probe("stream", "Streaming", probe_stream),
    Probe("stream_usage", "stream_options.include_usage", probe_stream_usage),
    Probe("max_tokens", "max_tokens", _limit_probe("max_tokens"), phase=1),
    Probe(
        "max_completion_tokens",
        "max_completion_tokens",
        _limit_probe("max_completion_tokens"),
        phase=1,
    ),
    Probe("stop", "stop sequences", probe_stop),
    Probe("n", "n > 1 (several choices)", probe_n),
    # Alone, after the others: concurrent requests may change the text on some servers,
    # which the probe tests on purpose, with two requests of its own.
    Probe("seed", "seed (same seed, same text)", probe_seed, phase=3),
    Probe("logprobs", "logprobs / top_logprobs", probe_logprobs),
    Probe("json_object", "response_format json_object", probe_json_object),
    Probe("json_schema", "response_format json_schema", probe_json_schema),
    Probe(
        "tools_auto",
        "Tools, tool_choice auto",
        _tool_probe(tools=[WEATHER], prompt=TOOL_PROMPT, choice="auto", want=1, what="tools"),
    ),
    Probe(
        "tools_required",
        "Tools, tool_choice required",
        _tool_probe(
            tools=[WEATHER],
            prompt="Say hello.",
            choice="required",
            want=1,
            what='tool_choice "required"',
        ),
    ),
    Probe(
        "tools_parallel",
        "Parallel tool calls",
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=PARALLEL_PROMPT,
            choice="auto",
            want=2,
            what="parallel tool calls",
        ),
    ),
    Probe(
        "tool_choice_named",
        "Tools, tool_choice naming a function",
        # The prompt asks for the weather; tool_choice names the clock.
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=TOOL_PROMPT,
            choice={"type": "function", "function": {"name": CLOCK["function"]["name"]}},
            want=1,
            what="a tool_choice naming a function",
        ),
    ),
    Probe(
        "parallel_false",
        "parallel_tool_calls: false",
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=PARALLEL_PROMPT,
            choice="required",
            want=1,
            what="parallel_tool_calls false",
            at_most=1,
            control={"parallel_tool_calls": True},
            parallel_tool_calls=False,
        ),
    ),
    Probe("tool_stream", "Streamed tool calls (index)", probe_tool_stream),
    Probe("system_role", "system role", _role_probe("system")),
    Probe("developer_role", "developer role", _role_probe("developer")),
    Probe("image", "Image input (PNG data URL)", probe_image),
    Probe("completions", "Legacy /completions", probe_completions),
    Probe("error_shape", "Error shape (unknown model)", probe_error_shape),
)
PROBE_KEYS = tuple(p.key for p in PROBES)
