"""The client for OpenAI-compatible endpoints.

Everything that talks HTTP to a provider lives here and turns what comes back (event
streams, JSON, error pages, dropped connections, silence) into the typed events of
``chat.upstream.events``.  Failures are reported as ``UpstreamError`` events (streaming) or
``UpstreamFailure`` exceptions (one-shot calls), never as raw httpx exceptions.

Requests to the host ``fake.invalid`` are served in-process by ``chat.fake_upstream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import html
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import httpx_sse

from chat import fake_upstream
from chat.fake_upstream import FakeUpstream

from . import netguard
from .asgi_transport import StreamingASGITransport
from .events import (
    Event,
    Finish,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
)

FAKE_HOST = "fake.invalid"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
ERROR_BODY_LIMIT = 64 * 1024
JSON_BODY_LIMIT = 16 * 1024 * 1024
SNIPPET_LENGTH = 500
# Raw capture (``raw=``) for the inspector: at most this many entries and UTF-8 bytes.
RAW_MAX_ENTRIES = 2000
RAW_MAX_BYTES = 1024 * 1024
RAW_TRUNCATED = "… (truncated)"
# OpenAI's stand-in for a logprob of minus infinity.
LOGPROB_FLOOR = -9999.0

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=40, keepalive_expiry=30)


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    # Secrets stay out of repr() so an Endpoint can be logged.
    api_key: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 10
    first_byte_timeout: float = 120
    idle_timeout: float = 60
    # Which delta field carries reasoning text: "auto" (reasoning_content, else reasoning),
    # or one of them only, for an endpoint that sends the other for something else.
    reasoning_field: str = "auto"


REASONING_FIELDS = ("reasoning_content", "reasoning")


class UpstreamFailure(Exception):
    """A one-shot call (``chat_once``, ``list_models``) failed; ``error`` says how."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def api_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between; a query on the base is kept."""
    parts = urlsplit(base_url.strip())
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, parts.query, ""))


# --------------------------------------------------------------------------- the pool

# Connections belong to the event loop that opened them, so there is one client per loop
# (in the server that is one per process; tests and async_to_sync create more loops).
_clients: dict[asyncio.AbstractEventLoop | None, httpx.AsyncClient] = {}
_transport: httpx.AsyncBaseTransport | None = None


def fake_app() -> FakeUpstream:
    """The in-process fake behind ``http://fake.invalid``; tests read its ``.requests``."""
    return fake_upstream.app


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def get_client() -> httpx.AsyncClient:
    loop = _running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for stale in [lp for lp in _clients if lp is not None and lp.is_closed()]:
            del _clients[stale]
        client = httpx.AsyncClient(
            # netguard: None (httpx's default) unless a guard setting is on.
            transport=_transport or netguard.transport(_LIMITS),
            mounts={f"all://{FAKE_HOST}": StreamingASGITransport(fake_app())},
            limits=_LIMITS,
            # Reads are unbounded here: stream_chat enforces first-byte and idle deadlines.
            timeout=httpx.Timeout(10, read=None),
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


def set_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route all non-fake requests through ``transport`` (tests); None restores the network.

    Existing clients are dropped, not closed: await ``aclose_client()`` first if a real
    connection pool was in use.
    """
    global _transport
    _transport = transport
    _clients.clear()


@contextlib.asynccontextmanager
async def _stream(method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
    """``client.stream(...)`` on the shared client, which also sweeps orphaned pooled
    connections whenever a request ends by an exception or a cancel (see below)."""
    client = get_client()
    try:
        async with client.stream(method, url, **kwargs) as response:
            yield response
    except BaseException:
        await reclaim_orphaned_connections(client)
        raise


async def reclaim_orphaned_connections(client: httpx.AsyncClient) -> int:
    """Close the pooled connections that no request owns; return how many.

    httpcore 1.0.9 leaves one behind when a request is cancelled after its connection
    was made but before the request was sent (encode/httpcore#1093, #1099): neither
    idle, closed nor available, it keeps a pool slot and a socket for good. Runs are
    cancelled all the time (Stop, first-byte and idle timeouts), so after each request
    that ends by an exception the pool is swept. A request in flight always owns its
    connection, so only true orphans are closed."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if connections is None or requests is None:
        return 0  # not an httpcore pool (a test transport), or httpcore changed shape
    owned = {id(getattr(r, "connection", None)) for r in requests}
    orphans = [c for c in connections if id(c) not in owned and not (c.is_idle() or c.is_closed())]
    for connection in orphans:
        connections.remove(connection)
    for connection in orphans:
        with contextlib.suppress(Exception):
            await connection.aclose()
    return len(orphans)


async def aclose_client() -> None:
    client = _clients.pop(_running_loop(), None)
    if client is not None:
        await client.aclose()


# --------------------------------------------------------------------------- helpers


def _headers(endpoint: Endpoint, accept: str) -> httpx.Headers:
    headers = httpx.Headers({"accept": accept})
    if endpoint.api_key:
        headers["authorization"] = f"Bearer {endpoint.api_key}"
    for key, value in endpoint.headers.items():
        headers[key] = value  # case-insensitive: a custom Authorization replaces ours
    return headers


def _timeouts(endpoint: Endpoint) -> httpx.Timeout:
    return httpx.Timeout(
        connect=endpoint.connect_timeout, read=None, write=None, pool=endpoint.connect_timeout
    )


def _where(url: str) -> str:
    """The host (and port) of ``url``, never its credentials, path or query."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the endpoint"
    if not host:
        return "the endpoint"
    return f"{host}:{port}" if port else host


def _seconds(value: float) -> str:
    return f"{value:g}"


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def _snippet(text: str, content_type: str = "") -> str:
    if "html" in content_type or text.lstrip()[:1] == "<":
        text = html.unescape(_TAG_RE.sub(" ", text))
    return " ".join(text.split())[:SNIPPET_LENGTH]


def _provider_error(obj: Any) -> dict[str, Any] | None:
    """message/type/code/param from the error shapes providers and proxies use."""
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]  # some gateways wrap the error in a one-item list
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message")
        if message is not None and not isinstance(message, str):
            message = json.dumps(message)
        return {
            "message": message or None,
            "type": _str_or_none(err.get("type")),
            "code": _str_or_none(err.get("code")),
            "param": _str_or_none(err.get("param")),
        }
    if isinstance(err, str) and err:
        return {"message": err, "type": None, "code": None, "param": None}
    if isinstance(obj.get("message"), str) and obj["message"]:
        return {
            "message": obj["message"],
            "type": _str_or_none(obj.get("type")),
            "code": _str_or_none(obj.get("code")),
            "param": None,
        }
    detail = obj.get("detail")
    if isinstance(detail, str) and detail:
        return {"message": detail, "type": None, "code": None, "param": None}
    if isinstance(detail, list) and detail:
        # FastAPI-style validation errors: [{"loc": [...], "msg": "..."}]
        msgs = [d.get("msg") if isinstance(d, dict) else None for d in detail]
        message = "; ".join(str(m or d) for m, d in zip(msgs, detail, strict=True))
        return {"message": message, "type": None, "code": None, "param": None}
    return None


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), True
    return bytes(buf), False


def _decode(raw: bytes, response: httpx.Response) -> str:
    try:
        return raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


Recorder = Callable[[str], None]


class _RawRecorder:
    """Appends what the endpoint sent, as text, to a caller's list for an inspector.

    Bounded: after ``RAW_MAX_ENTRIES`` entries or ``RAW_MAX_BYTES`` (UTF-8) in all it
    appends ``RAW_TRUNCATED`` once and then nothing more; the entry that crosses the byte
    limit is kept up to the limit.
    """

    __slots__ = ("_out", "_entries", "_bytes", "_full")

    def __init__(self, out: list[str]) -> None:
        self._out = out
        self._entries = 0
        self._bytes = 0
        self._full = False

    def __call__(self, text: str) -> None:
        if self._full:
            return
        if self._entries >= RAW_MAX_ENTRIES:
            self._stop()
            return
        # Called for every chunk of a stream: ASCII (nearly every chunk: JSON escapes
        # the rest by default) is measured without encoding it.
        size = len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))
        room = RAW_MAX_BYTES - self._bytes
        if size > room:
            if room > 0:
                encoded = text.encode("utf-8", errors="surrogatepass")
                self._out.append(encoded[:room].decode("utf-8", errors="ignore"))
            self._stop()
            return
        self._out.append(text)
        self._entries += 1
        self._bytes += size

    def _stop(self) -> None:
        self._out.append(RAW_TRUNCATED)
        self._full = True


def _recorder(raw: list[str] | None) -> Recorder | None:
    return None if raw is None else _RawRecorder(raw)


async def _error_from_response(
    response: httpx.Response, record: Recorder | None = None
) -> UpstreamError:
    raw, _ = await _read_bounded(response, ERROR_BODY_LIMIT)
    text = _decode(raw, response)
    if record is not None:
        record(text)
    status = response.status_code
    retryable = status in RETRYABLE_STATUSES
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        fields = _provider_error(json.loads(text)) if text.strip() else None
    except ValueError:
        fields = None
    if fields and fields["message"]:
        return UpstreamError(status=status, retryable=retryable, retry_after=retry_after, **fields)
    # The standard phrase first: some servers send "Unknown Status" for codes such as 429.
    reason = httpx.codes.get_reason_phrase(status) or response.reason_phrase
    message = f"HTTP {status} {reason}".strip()
    location = response.headers.get("location")
    if 300 <= status < 400 and location:
        message += f" (redirected to {location}; check the base URL)"
    content_type = response.headers.get("content-type", "")
    return UpstreamError(
        message=message,
        status=status,
        body=_snippet(text, content_type) or None,
        retryable=retryable,
        retry_after=retry_after,
        **{k: v for k, v in (fields or {}).items() if k != "message"},
    )


def _transport_error(exc: Exception, where: str, endpoint: Endpoint) -> UpstreamError:
    reason = str(exc) or type(exc).__name__
    blocked = netguard.upstream_error(exc)
    if blocked is not None:
        return blocked
    if isinstance(exc, httpx.ConnectTimeout):
        message = f"Timed out connecting to {where} after {_seconds(endpoint.connect_timeout)} s"
        return UpstreamError(message=message, type="timeout", retryable=True)
    if isinstance(exc, httpx.PoolTimeout):
        message = f"Too many concurrent requests to {where}; no connection became free"
        return UpstreamError(message=message, type="timeout", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        message = f"Could not connect to {where}: {reason}"
        return UpstreamError(message=message, type="connection_error", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        message = "The endpoint URL is not valid: it must start with http:// or https://"
        return UpstreamError(message=message, type="invalid_url")
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        message = f"The connection to {where} was lost: {reason}"
        return UpstreamError(message=message, type="connection_error", retryable=True)
    return UpstreamError(message=f"Request to {where} failed: {reason}", type="connection_error")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers send content parts even in deltas
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _usage(raw: dict[str, Any]) -> Usage:
    prompt = _int_or_none(raw.get("prompt_tokens"))
    completion = _int_or_none(raw.get("completion_tokens"))
    total = _int_or_none(raw.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total, raw=raw)


def _logprob(value: Any) -> float:
    """A finite logprob: null/NaN (unknown) is 0.0, minus infinity is ``LOGPROB_FLOOR``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    value = float(value)
    if math.isnan(value):
        return 0.0
    return min(max(value, LOGPROB_FLOOR), 0.0)


def _token_text(item: dict[str, Any]) -> str:
    token = item.get("token")
    if isinstance(token, str):
        return token
    raw = item.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw).decode("utf-8", errors="replace")
    return "" if token is None else str(token)


def _ranked(top: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(top, key=lambda t: -t["logprob"])


def _chat_logprob_tokens(content: list[Any]) -> list[dict[str, Any]]:
    """``logprobs.content`` of a chat choice: ``[{token, logprob, bytes, top_logprobs}]``."""
    tokens = []
    for item in content:
        if not isinstance(item, dict):
            continue
        top = item.get("top_logprobs")
        alternatives = [
            {"token": _token_text(t), "logprob": _logprob(t.get("logprob"))}
            for t in (top if isinstance(top, list) else [])
            if isinstance(t, dict)
        ]
        tokens.append(
            {
                "token": _token_text(item),
                "logprob": _logprob(item.get("logprob")),
                "top": _ranked(alternatives),
            }
        )
    return tokens


def _legacy_logprob_tokens(lp: dict[str, Any]) -> list[dict[str, Any]]:
    """A legacy completion's ``{tokens, token_logprobs, top_logprobs: [{tok: lp}]}``."""
    names = lp.get("tokens")
    values = lp.get("token_logprobs")
    tops = lp.get("top_logprobs")
    values = values if isinstance(values, list) else []
    tops = tops if isinstance(tops, list) else []
    tokens = []
    for i, name in enumerate(names if isinstance(names, list) else []):
        top = tops[i] if i < len(tops) else None
        alternatives = [
            {"token": str(k), "logprob": _logprob(v)}
            for k, v in (top.items() if isinstance(top, dict) else ())
        ]
        tokens.append(
            {
                "token": name if isinstance(name, str) else "" if name is None else str(name),
                "logprob": _logprob(values[i] if i < len(values) else None),
                "top": _ranked(alternatives),
            }
        )
    return tokens


def _logprobs_event(raw: Any, index: int) -> Logprobs | None:
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("content"), list):
        tokens = _chat_logprob_tokens(raw["content"])
    elif isinstance(raw.get("tokens"), list):
        tokens = _legacy_logprob_tokens(raw)
    else:
        return None
    return Logprobs(choice=index, tokens=tokens) if tokens else None


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


def _error_event(obj: Any, default: str) -> UpstreamError:
    fields = _provider_error(obj) or {}
    return UpstreamError(
        message=fields.get("message") or default,
        type=fields.get("type"),
        code=fields.get("code"),
        param=fields.get("param"),
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


def _chunk_events(
    data: str, event_name: str, reasoning_field: str = "auto"
) -> tuple[list[Event], bool]:
    """Events for one SSE ``data`` payload, and whether the stream is over."""
    data = data.strip()
    if data == "[DONE]":
        return [], True
    if not data:
        return [], False
    try:
        obj = json.loads(data)
    except ValueError as exc:
        error = UpstreamError(
            message=f"Malformed chunk from the endpoint: {exc}", body=data[:SNIPPET_LENGTH]
        )
        return [error], True
    if not isinstance(obj, dict):
        error = UpstreamError(
            message="Malformed chunk from the endpoint: expected a JSON object",
            body=data[:SNIPPET_LENGTH],
        )
        return [error], True
    if obj.get("error") or event_name == "error":
        return [_error_event(obj, "The endpoint reported an error mid-stream")], True
    return _payload_events(obj, reasoning_field), False


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


# --------------------------------------------------------------------------- public calls


def _timeout_error(endpoint: Endpoint, got_event: bool) -> UpstreamError:
    if got_event:
        message = f"Stream idle for more than {_seconds(endpoint.idle_timeout)} s"
    else:
        message = f"No response within {_seconds(endpoint.first_byte_timeout)} s"
    return UpstreamError(message=message, type="timeout", retryable=True)


class _IdleWatch:
    """The idle-between-chunks deadline, without moving a timer for every chunk (two
    reschedules of an asyncio.timeout per chunk cost ~10 % of relaying one): a chunk
    only notes the time, a timer wakes about once per idle period and either moves to
    the last chunk's deadline or expires ``timeout`` (which cancels the read under way).
    While the consumer holds an event (``held``), its own time is never counted."""

    __slots__ = ("_loop", "_timeout", "_idle", "last", "held", "_handle")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: asyncio.Timeout, idle: float
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._idle = idle
        self.last = loop.time()
        self.held = False
        self._handle = loop.call_at(self.last + idle, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = now + self._idle if self.held else self.last + self._idle
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
        else:
            self._timeout.reschedule(now)

    def cancel(self) -> None:
        self._handle.cancel()


async def _stream_events(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> AsyncIterator[Event]:
    """POST ``body`` and yield events as they arrive, cleaned (see ``stream_chat``);
    failures arrive as ``UpstreamError``.

    Use it with ``contextlib.aclosing`` (or exhaust it) so that stopping early returns the
    connection at once rather than when the generator is garbage-collected.

    ``raw``, when given, receives what the endpoint sent, as it arrived: each SSE ``data``
    payload (``[DONE]`` included), or the whole body of a JSON or error answer; bounded
    (see ``_RawRecorder``).
    """
    record = _recorder(raw)
    url = api_url(endpoint.base_url, path)
    where = _where(url)
    loop = asyncio.get_running_loop()
    got_event = False
    # One deadline for the whole exchange: first byte + first event, then idle gaps.  It is
    # lifted while the consumer holds an event so its own work is never timed out here.
    deadline = asyncio.timeout(endpoint.first_byte_timeout)
    try:
        async with (
            deadline,
            _stream(
                "POST",
                url,
                json=body,
                headers=_headers(endpoint, "text/event-stream"),
                timeout=_timeouts(endpoint),
            ) as response,
        ):
            if not response.is_success:
                error = await _error_from_response(response, record)
                deadline.reschedule(None)
                yield _clean(error, endpoint)
                return
            kind = _is_stream(response.headers.get("content-type", ""))
            if kind is not True:
                content, too_big = await _read_bounded(response, JSON_BODY_LIMIT)
                deadline.reschedule(None)
                if record is not None:
                    record(_decode(content, response))
                if kind is None or too_big:
                    media = response.headers.get("content-type", "")
                    error = UpstreamError(
                        message=f"The endpoint answered with {media} instead of an event stream",
                        status=response.status_code,
                        body=_snippet(_decode(content, response), media),
                    )
                    yield _clean(error, endpoint)
                    return
                for event in _completion_events(content, response, endpoint.reasoning_field):
                    yield _clean(event, endpoint)
                return
            if "event-stream" not in response.headers.get("content-type", ""):
                response.headers["content-type"] = "text/event-stream"  # for httpx_sse's check
            watch = None
            usage = _UsagePerChoice()
            try:
                async for sse in httpx_sse.EventSource(response).aiter_sse():
                    if record is not None:
                        record(sse.data)
                    events, done = _chunk_events(sse.data, sse.event, endpoint.reasoning_field)
                    if watch is None:
                        # The first event: from now on, the idle deadline.
                        got_event = True
                        deadline.reschedule(None)
                        watch = _IdleWatch(loop, deadline, endpoint.idle_timeout)
                    if events:
                        watch.held = True
                        for event in events:
                            kind = type(event)
                            if kind is Finish:
                                usage.finished.add(event.choice)
                            elif kind is Usage:
                                event = usage.add(event)
                            yield _clean(event, endpoint)
                        watch.held = False
                    if done:
                        return
                    watch.last = loop.time()
            finally:
                if watch is not None:
                    watch.cancel()
    except TimeoutError:
        if not deadline.expired():
            raise
        yield _clean(_timeout_error(endpoint, got_event), endpoint)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        if deadline.expired():
            yield _clean(_timeout_error(endpoint, got_event), endpoint)
        elif isinstance(exc.__context__, GeneratorExit | asyncio.CancelledError):
            # Closing the response failed while we were being closed or cancelled: yielding
            # now would swallow that, so let it propagate.
            raise
        else:
            yield _clean(_transport_error(exc, where, endpoint), endpoint)


async def _fetch(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    record: Recorder | None = None,
) -> tuple[httpx.Response, bytes]:
    """A one-shot request; the response's body is read (bounded) and returned."""
    url = api_url(endpoint.base_url, path)
    loop = asyncio.get_running_loop()
    deadline = asyncio.timeout(endpoint.first_byte_timeout)
    got_headers = False
    try:
        async with (
            deadline,
            _stream(
                method,
                url,
                json=body,
                headers=_headers(endpoint, "application/json"),
                timeout=_timeouts(endpoint),
            ) as response,
        ):
            got_headers = True
            deadline.reschedule(loop.time() + endpoint.idle_timeout)
            if not response.is_success:
                raise UpstreamFailure(await _error_from_response(response, record))
            raw, too_big = await _read_bounded(response, JSON_BODY_LIMIT)
    except TimeoutError:
        if not deadline.expired():
            raise
        if got_headers:
            message = f"Response stalled for more than {_seconds(endpoint.idle_timeout)} s"
        else:
            message = f"No response within {_seconds(endpoint.first_byte_timeout)} s"
        raise UpstreamFailure(
            UpstreamError(message=message, type="timeout", retryable=True)
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise UpstreamFailure(_transport_error(exc, _where(url), endpoint)) from exc
    if too_big:
        raise UpstreamFailure(
            UpstreamError(
                message=f"The response is larger than {JSON_BODY_LIMIT // 2**20} MB",
                status=response.status_code,
            )
        )
    return response, raw


async def _chat_once(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> dict[str, Any]:
    """POST ``body`` and return the parsed completion; raises ``UpstreamFailure``.

    ``raw``, when given, receives the response body as text (also of an error answer).
    """
    record = _recorder(raw)
    response, content = await _fetch(endpoint, "POST", path, body, record)
    text = _decode(content, response)
    if record is not None:
        record(text)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise UpstreamFailure(
            UpstreamError(
                message="The endpoint did not answer with a JSON object",
                status=response.status_code,
                body=_snippet(text, response.headers.get("content-type", "")),
            )
        )
    if obj.get("error"):
        error = _error_event(obj, "The endpoint reported an error")
        error.status = response.status_code
        raise UpstreamFailure(error)
    return obj


def _model_ids(obj: Any) -> list[str] | None:
    items: Any = None
    if isinstance(obj, list):
        items = obj
    elif isinstance(obj, dict):
        items = obj.get("data") if isinstance(obj.get("data"), list) else obj.get("models")
    if not isinstance(items, list):
        return None
    ids: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = next(
                (item[k] for k in ("id", "name", "model") if isinstance(item.get(k), str)), None
            )
        if not isinstance(item, str):
            return None
        if item and item not in ids:
            ids.append(item)
    return ids


async def _list_models(endpoint: Endpoint) -> list[str]:
    """Model ids from ``GET {base}/models``; raises ``UpstreamFailure``."""
    response, raw = await _fetch(endpoint, "GET", "models")
    text = _decode(raw, response)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    ids = _model_ids(obj)
    if ids is None:
        if isinstance(obj, dict) and obj.get("error"):
            error = _error_event(obj, "The endpoint reported an error")
            error.status = response.status_code
            raise UpstreamFailure(error)
        snippet = _snippet(text, response.headers.get("content-type", ""))
        raise UpstreamFailure(
            UpstreamError(
                message=(
                    "The endpoint answered /models with something that is not a model list: "
                    + (snippet[:200] or "an empty body")
                ),
                status=response.status_code,
                body=snippet or None,
            )
        )
    return ids


# --- the public calls: what leaves this module is cleaned -------------------------------
def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _no_nul(text: str) -> str:
    # PostgreSQL refuses U+0000 in text and jsonb; nobody needs it in chat text.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def redact_text(text: str | None, endpoint: Endpoint) -> str | None:
    """An endpoint that echoes the key or a header value back must not show it."""
    if not text:
        return text
    secrets = [endpoint.api_key, *endpoint.headers.values()]
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return _no_nul(text)


def _clean_error(error: UpstreamError, endpoint: Endpoint) -> UpstreamError:
    error.message = redact_text(error.message, endpoint) or ""
    error.body = redact_text(error.body, endpoint)
    return error


def _clean(event: Event, endpoint: Endpoint) -> Event:
    if isinstance(event, TextDelta | ReasoningDelta):
        event.text = _no_nul(event.text)
    elif isinstance(event, ToolCallDelta):
        event.arguments = _no_nul(event.arguments)
        if event.name:
            event.name = _no_nul(event.name)
    elif isinstance(event, UpstreamError):
        _clean_error(event, endpoint)
    return event


def stream_chat(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> AsyncIterator[Event]:
    """POST ``body`` and yield events as they arrive; failures arrive as ``UpstreamError``
    (never an exception), with any echoed secret redacted and NUL characters replaced.
    An async generator (no wrapper around it: one layer less for every chunk); close it
    with ``contextlib.aclosing`` to give the connection back at once."""
    return _stream_events(endpoint, body, path=path, raw=raw)


async def chat_once(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> dict[str, Any]:
    """One non-streamed request; raises ``UpstreamFailure`` (its error cleaned)."""
    try:
        return await _chat_once(endpoint, body, path=path, raw=raw)
    except UpstreamFailure as exc:
        _clean_error(exc.error, endpoint)
        raise


async def list_models(endpoint: Endpoint) -> list[str]:
    """Model ids from ``GET {base}/models``; raises ``UpstreamFailure`` (cleaned)."""
    try:
        return await _list_models(endpoint)
    except UpstreamFailure as exc:
        _clean_error(exc.error, endpoint)
        raise
