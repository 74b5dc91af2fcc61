"""Streamed chat: POST, then SSE chunks to cleaned events under first-byte and idle deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .bodies import JSON_BODY_LIMIT, Recorder, _decode, _read_bounded, _recorder
from .endpoint import Endpoint, _headers, _timeouts, _where, api_url
from .errors import _error_from_response, _snippet, _timeout_error, _transport_error
from .events import Event, UpstreamError
from .parse import _chunk_events, _completion_events, _is_stream, _progress
from .pool import _stream
from .reading import BodyRefused, EventReader
from .responses_api import RESPONSES_PATH, ResponsesEvents, whole_response_events
from .usage import _UsagePerChoice


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


def _post_for_events(
    endpoint: Endpoint, url: str, body: dict[str, Any]
) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
    """The streamed POST on the shared client (an async context manager of the response)."""
    headers = _headers(endpoint, "text/event-stream")
    return _stream("POST", url, json=body, headers=headers, timeout=_timeouts(endpoint))


async def _whole_answer_events(
    response: httpx.Response,
    endpoint: Endpoint,
    record: Recorder | None,
    deadline: asyncio.Timeout,
    responses: bool = False,
) -> list[Event] | None:
    """The events of an answer that is not an event stream, read whole (an error status,
    a JSON completion, anything else), with the deadline lifted; None for a stream."""
    if not response.is_success:
        error = await _error_from_response(response, record)
        deadline.reschedule(None)
        return [error]
    kind = _is_stream(response.headers.get("content-type", ""))
    if kind is True:
        return None
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
        return [error]
    if responses:
        return _whole_response(content, response)
    return _completion_events(content, response, endpoint.reasoning_field)


def _whole_response(raw: bytes, response: httpx.Response) -> list[Event]:
    """A Responses API answer read whole (not streamed)."""
    text = _decode(raw, response)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return _completion_events(raw, response)  # the error, as for chat
    events = whole_response_events(obj)
    if events is None:
        return [
            UpstreamError(
                message="The endpoint answered with JSON that is not a Responses object",
                status=response.status_code,
                body=_snippet(text),
            )
        ]
    return events


def _stream_failure(
    exc: Exception, deadline: asyncio.Timeout, endpoint: Endpoint, got_event: bool, url: str
) -> UpstreamError | None:
    """The error event for a stream that ended by ``exc``; None when ``exc`` must propagate
    (a TimeoutError that is not our deadline's, or a failure to close the response while
    the generator was being closed or cancelled: yielding then would swallow that)."""
    if deadline.expired():
        return _timeout_error(endpoint, got_event)
    if isinstance(exc, TimeoutError):
        return None
    if isinstance(exc.__context__, GeneratorExit | asyncio.CancelledError):
        return None
    return _transport_error(exc, _where(url), endpoint)


async def _stream_events(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> AsyncIterator[Event]:
    """``stream_chat``'s generator. One deadline covers the whole exchange: first byte and
    first progress, then (``_IdleWatch``) the gaps between events that move the answer on
    (``parse._progress``: an endpoint sending empty deltas forever is idle); it is lifted
    while the consumer holds an event so its own work is never timed out here. What is
    read is bounded (``reading``)."""
    record = _recorder(raw, endpoint.secrets)
    url = api_url(endpoint.base_url, path)
    responses = path == RESPONSES_PATH
    loop = asyncio.get_running_loop()
    got_event = False  # any progress of the answer
    deadline = asyncio.timeout(endpoint.first_byte_timeout)
    try:
        async with deadline, _post_for_events(endpoint, url, body) as response:
            whole = await _whole_answer_events(response, endpoint, record, deadline, responses)
            if whole is not None:
                for event in whole:
                    yield endpoint.secrets.event(event)
                return
            watch = None
            usage = _UsagePerChoice()
            reader = EventReader(response)
            typed = ResponsesEvents() if responses else None
            try:
                async for sse in reader.events():
                    if record is not None:
                        record(sse.data)
                    if typed is not None:
                        events, done = typed.chunk(sse.data, sse.event)
                    else:
                        events, done = _chunk_events(sse.data, sse.event, endpoint.reasoning_field)
                    # Only progress moves the idle timer and the reader's no-progress count.
                    progress = _progress(events)
                    if progress:
                        reader.progress()
                        if watch is None:  # the first progress: from now on, the idle deadline
                            got_event = True
                            deadline.reschedule(None)
                            watch = _IdleWatch(loop, deadline, endpoint.idle_timeout)
                    if events:
                        if watch is not None:
                            watch.held = True
                        for event in events:
                            yield endpoint.secrets.event(usage.track(event))
                        if watch is not None:
                            watch.held = False
                    if done:
                        return
                    if progress:
                        watch.last = loop.time()
            finally:
                if watch is not None:
                    watch.cancel()
    except BodyRefused as exc:
        yield endpoint.secrets.event(exc.error)
    except (TimeoutError, httpx.HTTPError, httpx.InvalidURL) as exc:
        error = _stream_failure(exc, deadline, endpoint, got_event, url)
        if error is None:
            raise
        yield endpoint.secrets.event(error)


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
    with ``contextlib.aclosing`` (or exhaust it) to give the connection back at once
    rather than when the generator is garbage-collected.

    ``raw``, when given, receives what the endpoint sent, as it arrived: each SSE ``data``
    payload (``[DONE]`` included), or the whole body of a JSON or error answer; bounded
    (see ``_RawRecorder``)."""
    return _stream_events(endpoint, body, path=path, raw=raw)
