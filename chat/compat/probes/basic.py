"""The basic probes: the model list, a plain and a streamed answer, usage while streaming,
instruction roles, an image part, legacy completions and the error shape."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from chat.upstream import UpstreamFailure, Usage, chat_once
from chat.upstream import client as upstream_client

from ..base import (
    DIFFERENT,
    LIMIT,
    NOT_ABOUT_THE_FEATURE,
    SUPPORTED,
    UNSUPPORTED,
    Context,
    Outcome,
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
from .common import (
    BAD_MODEL,
    CHAT_PROMPT,
    PNG_DATA_URL,
    ROLE_PROMPT,
    _ok,
    _plural,
)


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
        detail += f", first token after {result.ttft_ms:,} ms"
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
