"""One generation: upstream events -> accumulate (chat.runs.stream) -> broadcast
(chat.runs.broadcast) -> persist (chat.runs.persist)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from chat import upstream
from chat.mdstream import MarkdownStream
from chat.models import Message
from chat.runs.broadcast import RunControl, _registry, run_group, send_loop
from chat.runs.persist import persist_failure, persist_final
from chat.runs.stream import CONTENT, REASONING, TextStream, text_field, usage_summary
from chat.tools import ToolCallAssembler

log = logging.getLogger(__name__)

# Retries before the first byte of an answer (see Run._retry_delay).
MAX_ATTEMPTS = 3
RETRY_AFTER_CAP = 20.0
BACKOFF = (0.5, 1.0)


class Run:
    def __init__(
        self,
        *,
        message_id: int,
        conversation_group: str,
        endpoint: upstream.Endpoint,
        body: dict[str, Any],
        profile_id: Any,
        path: str = "chat/completions",
        prices: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.message_id = message_id
        self.group = conversation_group
        self.endpoint = endpoint
        self.body = body
        self.profile_id = profile_id
        self.path = path
        self.prices = prices
        # Every string from the endpoint passes through these before it is kept or shown.
        self.secrets = endpoint.secrets
        self.streams: dict[str, TextStream] = {
            CONTENT: TextStream(secrets=self.secrets),
            REASONING: TextStream(secrets=self.secrets),
        }
        # Chat answers (each choice's text) are shown as markdown while they stream.
        self.markdown = path == "chat/completions"
        self.blocks: dict[str, MarkdownStream] = {}
        self.tools = ToolCallAssembler()
        self.new_calls: list[dict[str, Any]] = []  # announced to the pages by the sender
        self.usage: dict[str, Any] | None = None
        self.finish_reasons: dict[int, str] = {}
        self.logprobs: dict[int, list[dict[str, Any]]] = {}
        # The raw line each logprob token came in, and the pieces of a secret cut out of
        # the tokens (with their line), for the raw response.
        self.logprob_sources: dict[int, list[int]] = {}
        self.logprob_fragments: list[tuple[int, str]] = []
        self.raw: list[str] = []
        self.error: upstream.UpstreamError | None = None
        self.learned_quirks: dict[str, Any] = {}
        self.retries = 0
        self._got_answer = False  # any event of the answer: from then on, never retry
        self._size = 0  # characters of text, reasoning and tool arguments so far
        self.started = 0.0
        self.first_token_at: float | None = None
        self.stop_requested = False
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- control ----------------------------------------------------------------------
    def prefetch(self, name: str = "run-early") -> None:
        """Send the request now, before the run is launched (its answer is saved and
        announced meanwhile): what arrives waits in the streams, and ``main`` (after
        ``run_launch``) relays it. On the event loop; ``abandon`` if never launched."""
        if self._stream_task is None:
            self.started = time.monotonic()
            self._stream_task = asyncio.create_task(
                self._stream(), name=name, context=contextvars.Context()
            )

    def abandon(self) -> None:
        """Drop a prefetched request whose answer was not saved (closes the request)."""
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()

    def stop(self) -> None:
        self.stop_requested = True
        if self._stream_task and not self._stream_task.done():
            self._stream_task.cancel()

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons.get(0, "")

    def call_info(self, slot: int) -> dict[str, Any]:
        call = self.tools.calls[slot]  # its id and name were redacted as they arrived
        return {"slot": slot, "name": call["function"]["name"], "id": call["id"]}

    def snapshot(self) -> dict[str, Any]:
        fields = {name: stream.text() for name, stream in self.streams.items()}
        return {
            "type": "run.snapshot",
            "message_id": self.message_id,
            "calls": [self.call_info(slot) for slot in range(len(self.tools.calls))],
            "fields": fields,
            # Markdown fields: the blocks rendered so far (the rest of the text is the tail).
            "blocks": {
                name: md.snapshot(text)
                for name, text in fields.items()
                if (md := self._markdown_stream(name)) is not None
            },
        }

    def _markdown_stream(self, name: str) -> MarkdownStream | None:
        is_text = name == CONTENT or (name[:1] == CONTENT and name[1:].isdigit())
        if not self.markdown or not is_text:
            return None
        md = self.blocks.get(name)
        if md is None:
            md = self.blocks[name] = MarkdownStream()
        return md

    async def _commit(self, name: str, chunk: str) -> dict[str, Any] | None:
        """Feed the field's new text to its markdown split: the blocks it completed."""
        md = self._markdown_stream(name)
        pending = md.feed(chunk) if md is not None else None
        if pending is None:
            return None
        if not pending.cheap:
            # Highlighting code or a long block takes milliseconds: not on the event loop
            # (which may serve a snapshot meanwhile: the split itself moves on afterwards).
            await asyncio.to_thread(pending.prepare)
        return pending.render().event()

    # --- the run ----------------------------------------------------------------------
    async def main(self) -> None:
        layer = get_channel_layer()
        control = await RunControl.get()
        await layer.group_add(run_group(self.message_id), control.channel_name)
        sender = asyncio.create_task(send_loop(self, layer))
        status = Message.Status.COMPLETE
        try:
            self.prefetch(f"run-stream-{self.message_id}")  # unless it was (see prefetch)
            assert self._stream_task is not None
            try:
                await self._stream_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the process is shutting down: leave it to the heartbeat
                status = Message.Status.STOPPED
            except Exception as exc:  # a bug must still end the message cleanly
                log.exception("run %s failed", self.message_id)
                self.error = self.secrets.error(
                    upstream.UpstreamError(message=f"Internal error while streaming: {exc}")
                )
            if self.error is not None:
                status = Message.Status.ERROR
            elif status == Message.Status.COMPLETE and not self.finish_reason:
                status = Message.Status.ERROR
                self.error = upstream.UpstreamError(
                    message="The stream ended before the endpoint finished the answer "
                    "(no finish_reason); the text so far is kept."
                )
        finally:
            self.finished = True
            self._wake.set()
            try:
                await sender
            finally:
                _registry.pop(self.message_id, None)
                await layer.group_discard(run_group(self.message_id), control.channel_name)
        try:
            html = await persist_final(self, status)
        except Exception as exc:  # never leave the page waiting on a `streaming` answer
            log.exception("saving run %s failed", self.message_id)
            html = await persist_failure(self, exc)
        await layer.group_send(
            self.group, {"type": "run.done", "message_id": self.message_id, "html": html}
        )

    async def _stream(self) -> None:
        # The answer's whole time, retries included: the idle timer only catches silence,
        # not an endpoint that trickles text (or anything else) forever.
        limit = settings.ANSWER_MAX_SECONDS
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                await self._attempts()
        except TimeoutError:
            if not deadline.expired():
                raise
            # Leaving the ``async with`` closed the request; the text so far is kept.
            self.error = upstream.UpstreamError(
                message=f"The answer took longer than {limit:g} s (ANSWER_MAX_SECONDS) "
                "and was ended there; the text so far is kept.",
                type="answer_time_limit",
            )

    async def _attempts(self) -> None:
        body = self.body
        attempt = 1
        while True:
            again: float | None = None  # seconds to wait before trying again
            self.raw.clear()
            events = upstream.stream_chat(self.endpoint, body, path=self.path, raw=self.raw)
            async with contextlib.aclosing(events) as events:
                async for event in events:
                    if isinstance(event, upstream.UpstreamError):
                        if self._rejects_stream_options(event, body):
                            body = {k: v for k, v in body.items() if k != "stream_options"}
                            self.learned_quirks["include_usage"] = False
                            again = 0.0
                            break
                        again = self._retry_delay(event, attempt)
                        if again is None:
                            self.error = event
                            return
                        break
                    self._got_answer = True
                    self._handle(event)
                    if self._size > settings.ANSWER_MAX_CHARS:
                        # Closing the stream ends the request; the text so far is kept.
                        self.error = upstream.UpstreamError(
                            message=f"The answer passed the limit of "
                            f"{settings.ANSWER_MAX_CHARS:,} characters (ANSWER_MAX_CHARS) "
                            "and was cut there; the text so far is kept.",
                            type="answer_too_large",
                        )
                        return
            if again is None:
                self.body = body
                return
            attempt += 1
            self.retries += 1
            # Stop during this wait cancels the task here: no further request is made.
            await asyncio.sleep(again)

    def _retry_delay(self, error: upstream.UpstreamError, attempt: int) -> float | None:
        """Before anything of the answer arrived, a transient failure (429, 502-504, a
        connect error or timeout) is tried again, a few times: then never, so no text
        can be duplicated. None = give up and show this error."""
        if self._got_answer or not error.retryable or attempt >= MAX_ATTEMPTS:
            return None
        if error.retry_after is not None:
            # Waiting minutes for a rate limit helps nobody: say so at once instead.
            return error.retry_after if error.retry_after <= RETRY_AFTER_CAP else None
        return BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]

    def _rejects_stream_options(self, event: upstream.UpstreamError, body: dict[str, Any]) -> bool:
        # Some servers refuse stream_options outright; retry once without and remember.
        return (
            "stream_options" in body
            and self.first_token_at is None
            and event.status in (400, 422)
            and "stream_options" in f"{event.message} {event.param or ''} {event.body or ''}"
        )

    def _handle(self, event: Any) -> None:
        if isinstance(event, upstream.TextDelta | upstream.ReasoningDelta):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if isinstance(event, upstream.ReasoningDelta):
                if event.choice != 0:
                    return  # only the continuing choice's reasoning is kept
                name = REASONING
            else:
                name = text_field(event.choice)
            stream = self.streams.get(name)
            if stream is None:
                stream = self.streams[name] = TextStream(secrets=self.secrets)
            stream.append(event.text, len(self.raw) - 1)
            self._size += len(event.text)
            self._wake.set()
        elif isinstance(event, upstream.ToolCallDelta):
            if event.choice != 0:
                return
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            slot, new = self.tools.add(event.index, event.id, event.name, event.arguments)
            if new:
                self.new_calls.append({"slot": slot})
            name = f"a{slot}"
            stream = self.streams.get(name)
            if stream is None:
                stream = self.streams[name] = TextStream(secrets=self.secrets)
            if event.arguments:
                stream.append(event.arguments, len(self.raw) - 1)
                self._size += len(event.arguments)
            self._wake.set()
        elif isinstance(event, upstream.Logprobs):
            self.logprobs.setdefault(event.choice, []).extend(event.tokens)
            sources = self.logprob_sources.setdefault(event.choice, [])
            sources.extend([len(self.raw) - 1] * len(event.tokens))
        elif isinstance(event, upstream.Usage):
            self.usage = usage_summary(event)
        elif isinstance(event, upstream.Finish):
            self.finish_reasons[event.choice] = event.reason
