"""One generation: the request to the endpoint (retries before the first byte, the time
and size limits, Stop), its events added up by an ``Answer`` (answer.py), relayed to the
pages by a ``Relay`` (relay.py) and saved by a ``Store`` (store.py)."""

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
from chat.models import Message
from chat.runs import control
from chat.runs.answer import Answer, metrics
from chat.runs.relay import Relay
from chat.runs.store import Outcome, Store

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
        group: str,
        endpoint: upstream.Endpoint,
        body: dict[str, Any],
        profile_id: Any,
        path: str = "chat/completions",
        prices: tuple[float | None, float | None] = (None, None),
        fallback: dict[str, Any] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.body = body
        # A chained Responses request's stateless twin, for a server refusing the chain.
        self.fallback = fallback
        self.notes: list[str] = []  # what the run did that the answer should say
        self.path = path
        self.prices = prices
        # Every string from the endpoint passes through its Secrets before it is kept
        # or shown (the Answer's streams, its error).
        self.secrets = endpoint.secrets
        self.answer = Answer(self.secrets)
        self.store = Store(message_id, profile_id)
        self.relay = Relay(
            self.answer,
            group=group,
            markdown=path != "completions",
            save=lambda: self.store.save_partial(self.answer),
            message_id=message_id,
        )
        self.error: upstream.UpstreamError | None = None
        self.learned_quirks: dict[str, Any] = {}
        self.retries = 0
        self.started = 0.0
        self.stop_requested = False
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self._request: asyncio.Task[None] | None = None
        self._got_answer = False  # any event of the answer: from then on, never retry

    @property
    def message_id(self) -> int:
        return self.store.message_id

    def bind(self, message_id: int) -> None:
        """The saved answer this run fills (a request may start before its save)."""
        self.store.message_id = self.relay.message_id = message_id

    # --- control ----------------------------------------------------------------------
    def prefetch(self, name: str = "run-early") -> None:
        """Send the request now, before the run is launched (its answer is saved and
        announced meanwhile): what arrives waits in the answer, and ``main`` relays it.
        On the event loop; ``abandon`` if never launched. Not once stopped: a Stop that
        came between the run's start and its request is kept, nothing is asked."""
        if self._request is None and not self.stop_requested:
            self.started = time.monotonic()
            self._request = asyncio.create_task(
                self._stream(), name=name, context=contextvars.Context()
            )

    def abandon(self) -> None:
        """Drop a prefetched request whose answer was not saved (closes the request)."""
        if self._request is not None and not self._request.done():
            self._request.cancel()

    def stop(self) -> None:
        self.stop_requested = True
        if self._request and not self._request.done():
            self._request.cancel()

    def snapshot(self) -> dict[str, Any]:
        return self.relay.snapshot()

    # --- the run ----------------------------------------------------------------------
    async def main(self) -> None:
        layer = get_channel_layer()
        mailbox = await control.Mailbox.get()
        await mailbox.join(self.message_id)
        relaying = asyncio.create_task(self.relay.run(layer))
        try:
            status = await self._status()
        finally:
            try:
                await relaying
            finally:
                control.registry.pop(self.message_id, None)
                await mailbox.leave(self.message_id)
        outcome = Outcome(
            status=status,
            body=self.body,
            metrics=metrics(
                self.answer,
                started=self.started,
                ended=time.monotonic(),
                retries=self.retries,
                prices=self.prices,
            )
            | ({"notes": self.notes} if self.notes else {}),
            error=self.error,
            learned_quirks=self.learned_quirks,
        )
        try:
            html = await self.store.save_final(self.answer, outcome)
        except Exception as exc:  # never leave the page waiting on a `streaming` answer
            log.exception("saving run %s failed", self.message_id)
            html = await self.store.save_failure(self.answer, exc)
        await layer.group_send(
            self.relay.group, {"type": "run.done", "message_id": self.message_id, "html": html}
        )

    async def _status(self) -> str:
        """Wait for the request to end; how it ended (the relay is told either way)."""
        status = Message.Status.COMPLETE
        try:
            self.prefetch(f"run-stream-{self.message_id}")  # unless it was (see prefetch)
            if self._request is None:  # stopped before its request was made
                status = Message.Status.STOPPED
            else:
                status = await self._ended()
            if self.error is not None:
                status = Message.Status.ERROR
            elif status == Message.Status.COMPLETE and not self.answer.finish_reason:
                status = Message.Status.ERROR
                self.error = upstream.UpstreamError(
                    message="The stream ended before the endpoint finished the answer "
                    "(no finish_reason); the text so far is kept."
                )
        finally:
            self.finished = True
            self.relay.end()
        return status

    async def _ended(self) -> str:
        """Wait for the request; STOPPED when it was cancelled by Stop, else COMPLETE (a
        bug while streaming is kept as the answer's error)."""
        try:
            assert self._request is not None
            await self._request
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the process is shutting down: leave it to the heartbeat
            return Message.Status.STOPPED
        except Exception as exc:  # a bug must still end the message cleanly
            log.exception("run %s failed", self.message_id)
            self.error = self.secrets.error(
                upstream.UpstreamError(message=f"Internal error while streaming: {exc}")
            )
        return Message.Status.COMPLETE

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
            self.answer.raw.clear()
            events = upstream.stream_chat(self.endpoint, body, path=self.path, raw=self.answer.raw)
            async with contextlib.aclosing(events) as events:
                async for event in events:
                    if isinstance(event, upstream.UpstreamError):
                        if self._rejects_stream_options(event, body):
                            body = {k: v for k, v in body.items() if k != "stream_options"}
                            self.learned_quirks["include_usage"] = False
                            again = 0.0
                            break
                        if self._refuses_chain(event, body):
                            if self.fallback is not None:
                                body, self.fallback = self.fallback, None
                                self.body = body  # what is asked now (and saved)
                                self.notes.append(
                                    "The endpoint refused previous_response_id "
                                    f"({event.message[:200]}): the whole conversation was "
                                    "sent instead."
                                )
                                again = 0.0
                                break
                            event.message += (
                                " — this lane chains its turns with previous_response_id; "
                                "set its Conversation state to stateless, or to "
                                "chained_or_whole, to send the whole conversation instead."
                            )
                        again = self._retry_delay(event, attempt)
                        if again is None:
                            self.error = event
                            return
                        break
                    self._got_answer = True
                    self._handle(event)
                    if self.answer.size > settings.ANSWER_MAX_CHARS:
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
            and self.answer.first_token_at is None
            and event.status in (400, 422)
            and "stream_options" in f"{event.message} {event.param or ''} {event.body or ''}"
        )

    def _refuses_chain(self, event: upstream.UpstreamError, body: dict[str, Any]) -> bool:
        # A stateless server (400), or one that stored nothing (404), naming the chain.
        said = f"{event.message} {event.param or ''} {event.code or ''} {event.body or ''}"
        return (
            "previous_response_id" in body
            and self.answer.first_token_at is None
            and event.status in (400, 404, 422)
            and ("previous_response" in said or "previous response" in said.lower())
        )

    def _handle(self, event: Any) -> None:
        if self.answer.add(event, time.monotonic()):
            self.relay.wake()
