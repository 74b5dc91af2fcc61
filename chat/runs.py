"""One generation: upstream events -> accumulate -> persist -> broadcast.

A run lives in the process that started it, not in a socket: closing the tab does not
stop it. It is reachable from any process through the channel layer (group
``run.<message id>``), which is how Stop and snapshot requests find it.

Traffic is kept linear in the answer's length: deltas are coalesced (the first at once,
then at most one frame per RUN_FRAME_INTERVAL) and frames carry only new text, with its
offset so every receiver can drop what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from chat import frames
from chat.mdstream import MarkdownStream
from chat.models import EndpointProfile, Lane, Message
from chat.services import LEGACY_CALL_PREFIX
from chat.tools import ToolCallAssembler
from chat.upstream import (
    Endpoint,
    Finish,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
    stream_chat,
)
from chat.upstream.client import redact_text

log = logging.getLogger(__name__)

# Stream fields, also the DOM id prefixes: "t" is choice 0's text, "r" its reasoning,
# "t1", "t2", ... the text of the other choices when n > 1.
CONTENT, REASONING = "t", "r"


def text_field(choice: int) -> str:
    return CONTENT if choice == 0 else f"t{choice}"


def response_model(raw: list[str]) -> str:
    """The ``model`` the endpoint says answered (its chunks or JSON body carry one), or ""."""
    for line in raw[:8]:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            return data["model"][:200]
    return ""


# Retries before the first byte of an answer (see Run._retry_delay).
MAX_ATTEMPTS = 3
RETRY_AFTER_CAP = 20.0
BACKOFF = (0.5, 1.0)

# Runs owned by this process, by assistant message id.
_registry: dict[int, Run] = {}


def usage_summary(event: Usage) -> dict[str, Any]:
    """The usage figures worth keeping, including the detail some endpoints send."""
    usage = {
        k: v
        for k, v in {
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "total_tokens": event.total_tokens,
        }.items()
        if v is not None
    }
    details = event.raw.get("completion_tokens_details") or {}
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        usage["reasoning_tokens"] = details["reasoning_tokens"]
    cached = event.raw.get("prompt_tokens_details") or {}
    if isinstance(cached, dict) and isinstance(cached.get("cached_tokens"), int):
        usage["cached_tokens"] = cached["cached_tokens"]
    return usage


def run_group(message_id: int) -> str:
    return f"run.{message_id}"


def endpoint_for(profile: EndpointProfile) -> Endpoint:
    return Endpoint(
        base_url=profile.base_url,
        api_key=profile.api_key,
        headers=profile.extra_headers,
        connect_timeout=profile.connect_timeout,
        first_byte_timeout=profile.first_byte_timeout,
        idle_timeout=profile.idle_timeout,
        reasoning_field=(profile.quirks or {}).get("reasoning_field") or "auto",
    )


REDACTED = "[redacted]"


def endpoint_secrets(endpoint: Endpoint) -> tuple[str, ...]:
    """What an answer must never show: the API key and the extra headers' values (as
    redact_text takes them: 4 characters or more), longest first."""
    secrets = {s for s in (endpoint.api_key, *endpoint.headers.values()) if s and len(s) >= 4}
    return tuple(sorted(secrets, key=len, reverse=True))


@dataclass
class _Stream:
    """Text accumulated for one field, and how much of it was broadcast.

    With `secrets`, an echoed secret becomes [redacted] before anything is kept or
    broadcast, even split across deltas: the tail that could begin a secret (at most
    len(longest secret) - 1 characters) is held back until more text comes or the stream
    ends (flush). Each piece of a redacted secret is noted in `fragments` with the raw
    line (`source`) its delta came from, so the raw response can lose it too."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    sent: int = 0
    pending: list[str] = field(default_factory=list)
    secrets: tuple[str, ...] = ()
    held: list[tuple[int, str]] = field(default_factory=list)  # (source, piece)
    fragments: list[tuple[int, str]] = field(default_factory=list)

    def append(self, text: str, source: int = -1) -> None:
        if self.secrets:
            text = self._redacted([*self.held, (source, text)])
        self._keep(text)

    def _keep(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pending.append(text)
            self.length += len(text)

    def _redacted(self, pieces: list[tuple[int, str]], *, final: bool = False) -> str:
        """The pieces' text with every whole secret replaced, less the tail held back."""
        text = "".join(piece for _, piece in pieces)
        spans, at = [], 0  # (source, start, end) of each piece in `text`
        for source, piece in pieces:
            spans.append((source, at, at + len(piece)))
            at += len(piece)
        out, pos = [], 0
        while True:
            found = [(i, sec) for sec in self.secrets if (i := text.find(sec, pos)) >= 0]
            if not found:
                break
            i, secret = min(found, key=lambda f: (f[0], -len(f[1])))
            if not final and any(
                len(sec) > len(text) - i and sec.startswith(text[i:]) for sec in self.secrets
            ):
                break  # a longer secret may still match here: wait for more text
            out.append(text[pos:i] + REDACTED)
            for source, a, b in spans:
                lo, hi = max(a, i), min(b, i + len(secret))
                if lo < hi:
                    self.fragments.append((source, text[lo:hi]))
            pos = i + len(secret)
        # Hold back the shortest tail that may begin a secret (usually nothing).
        firsts = {sec[0] for sec in self.secrets}
        cut = len(text) if final else max(pos, len(text) - (len(self.secrets[0]) - 1))
        while cut < len(text) and not (
            text[cut] in firsts and any(sec.startswith(text[cut:]) for sec in self.secrets)
        ):
            cut += 1
        self.held = [(source, text[max(a, cut) : b]) for source, a, b in spans if b > max(a, cut)]
        out.append(text[pos:cut])
        return "".join(out)

    def flush(self) -> None:
        """The end of the stream: what was held back can no longer begin a secret."""
        if self.held:
            self._keep(self._redacted(self.held, final=True))
            self.held = []

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def take_pending(self) -> tuple[int, str]:
        chunk = "".join(self.pending)
        self.pending.clear()
        offset = self.sent
        self.sent += len(chunk)
        return offset, chunk


class Run:
    def __init__(
        self,
        *,
        message_id: int,
        conversation_group: str,
        endpoint: Endpoint,
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
        self.secrets = endpoint_secrets(endpoint)
        self.streams: dict[str, _Stream] = {
            CONTENT: _Stream(secrets=self.secrets),
            REASONING: _Stream(secrets=self.secrets),
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
        self.error: UpstreamError | None = None
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
    def stop(self) -> None:
        self.stop_requested = True
        if self._stream_task and not self._stream_task.done():
            self._stream_task.cancel()

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons.get(0, "")

    def call_info(self, slot: int) -> dict[str, Any]:
        call = self.tools.calls[slot]
        name = redact_text(call["function"]["name"], self.endpoint)
        return {"slot": slot, "name": name, "id": call["id"]}

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
        self.started = time.monotonic()
        sender = asyncio.create_task(self._sender(layer))
        status = Message.Status.COMPLETE
        try:
            self._stream_task = asyncio.create_task(self._stream())
            try:
                await self._stream_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the process is shutting down: leave it to the heartbeat
                status = Message.Status.STOPPED
            except Exception as exc:  # a bug must still end the message cleanly
                log.exception("run %s failed", self.message_id)
                self.error = UpstreamError(message=f"Internal error while streaming: {exc}")
            if self.error is not None:
                status = Message.Status.ERROR
            elif status == Message.Status.COMPLETE and not self.finish_reason:
                status = Message.Status.ERROR
                self.error = UpstreamError(
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
            html = await self._persist_final(status)
        except Exception as exc:  # never leave the page waiting on a `streaming` answer
            log.exception("saving run %s failed", self.message_id)
            html = await self._persist_failure(exc)
        await layer.group_send(
            self.group, {"type": "run.done", "message_id": self.message_id, "html": html}
        )

    async def _stream(self) -> None:
        body = self.body
        attempt = 1
        while True:
            again: float | None = None  # seconds to wait before trying again
            self.raw.clear()
            events = stream_chat(self.endpoint, body, path=self.path, raw=self.raw)
            async with contextlib.aclosing(events) as events:
                async for event in events:
                    if isinstance(event, UpstreamError):
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
                        self.error = UpstreamError(
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

    def _retry_delay(self, error: UpstreamError, attempt: int) -> float | None:
        """Before anything of the answer arrived, a transient failure (429, 502-504, a
        connect error or timeout) is tried again, a few times: then never, so no text
        can be duplicated. None = give up and show this error."""
        if self._got_answer or not error.retryable or attempt >= MAX_ATTEMPTS:
            return None
        if error.retry_after is not None:
            # Waiting minutes for a rate limit helps nobody: say so at once instead.
            return error.retry_after if error.retry_after <= RETRY_AFTER_CAP else None
        return BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]

    def _rejects_stream_options(self, event: UpstreamError, body: dict[str, Any]) -> bool:
        # Some servers refuse stream_options outright; retry once without and remember.
        return (
            "stream_options" in body
            and self.first_token_at is None
            and event.status in (400, 422)
            and "stream_options" in f"{event.message} {event.param or ''} {event.body or ''}"
        )

    def _handle(self, event: Any) -> None:
        if isinstance(event, TextDelta | ReasoningDelta):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if isinstance(event, ReasoningDelta):
                if event.choice != 0:
                    return  # only the continuing choice's reasoning is kept
                name = REASONING
            else:
                name = text_field(event.choice)
            stream = self.streams.get(name)
            if stream is None:
                stream = self.streams[name] = _Stream(secrets=self.secrets)
            stream.append(event.text, len(self.raw) - 1)
            self._size += len(event.text)
            self._wake.set()
        elif isinstance(event, ToolCallDelta):
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
                stream = self.streams[name] = _Stream(secrets=self.secrets)
            if event.arguments:
                stream.append(event.arguments, len(self.raw) - 1)
                self._size += len(event.arguments)
            self._wake.set()
        elif isinstance(event, Logprobs):
            self.logprobs.setdefault(event.choice, []).extend(event.tokens)
            sources = self.logprob_sources.setdefault(event.choice, [])
            sources.extend([len(self.raw) - 1] * len(event.tokens))
        elif isinstance(event, Usage):
            self.usage = usage_summary(event)
        elif isinstance(event, Finish):
            self.finish_reasons[event.choice] = event.reason

    async def _sender(self, layer: Any) -> None:
        """Broadcast coalesced deltas and save a heartbeat about once a second."""
        last_save = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=settings.RUN_SAVE_INTERVAL)
            self._wake.clear()
            # Read `finished` before draining: if the stream ends while a send below is
            # awaited, its last deltas are flushed on the next pass instead of being lost.
            finished = self.finished
            if finished:
                for stream in self.streams.values():
                    stream.flush()
            while self.new_calls:
                # A call's element must reach the pages before its arguments do.
                slot = self.new_calls.pop(0)["slot"]
                await layer.group_send(
                    self.group,
                    {"type": "run.toolcall", "message_id": self.message_id, **self.call_info(slot)},
                )
            for name, stream in list(self.streams.items()):
                if stream.pending:
                    offset, chunk = stream.take_pending()
                    event = {
                        "type": "run.delta",
                        "message_id": self.message_id,
                        "field": name,
                        "offset": offset,
                        "text": chunk,
                    }
                    block = await self._commit(name, chunk)
                    if block is not None:
                        event["block"] = block
                    await layer.group_send(self.group, event)
            if finished:
                return
            now = time.monotonic()
            if now - last_save >= settings.RUN_SAVE_INTERVAL:
                last_save = now
                await self._save_partial()
            await asyncio.sleep(settings.RUN_FRAME_INTERVAL)

    # --- persistence ------------------------------------------------------------------
    @database_sync_to_async
    def _save_partial(self) -> None:
        Message.objects.filter(pk=self.message_id, status=Message.Status.STREAMING).update(
            content=self.streams[CONTENT].text(),
            reasoning=self.streams[REASONING].text(),
            heartbeat_at=timezone.now(),
        )

    def metrics(self, ended: float) -> dict[str, Any]:
        metrics: dict[str, Any] = {"total_ms": round((ended - self.started) * 1000)}
        if self.first_token_at is None:
            return metrics
        metrics["ttft_ms"] = round((self.first_token_at - self.started) * 1000)
        tokens = (self.usage or {}).get("completion_tokens")
        estimated = tokens is None
        if estimated:
            # ~4 characters a token for English text; labelled as an estimate.
            chars = sum(stream.length for stream in self.streams.values())
            tokens = max(1, round(chars / 4))
        generating = ended - self.first_token_at
        if generating > 0.001 and tokens:
            metrics["tokens_per_s"] = round(tokens / generating, 1)
            metrics["tokens_estimated"] = estimated
        metrics["completion_tokens"] = tokens
        if self.retries:
            metrics["retries"] = self.retries
        price_in, price_out = self.prices
        if self.usage and (price_in is not None or price_out is not None):
            metrics["cost"] = (
                (self.usage.get("prompt_tokens") or 0) * (price_in or 0)
                + (self.usage.get("completion_tokens") or 0) * (price_out or 0)
            ) / 1_000_000
        return metrics

    def choices(self) -> list[dict[str, Any]] | None:
        indices = sorted({0, *self.finish_reasons, *self.logprobs} | {
            int(name[1:]) for name in self.streams if name.startswith("t") and name != CONTENT
        })  # fmt: skip
        if indices == [0]:
            return None
        return [
            {
                "index": i,
                "content": self.streams[text_field(i)].text()
                if text_field(i) in self.streams
                else "",
                "finish_reason": self.finish_reasons.get(i, ""),
                "logprobs": self.logprobs.get(i),
            }
            for i in indices
        ]

    @database_sync_to_async
    def _persist_final(self, status: str) -> str:
        from chat.render import render_markdown

        for stream in self.streams.values():
            stream.flush()  # (done by the sender already, unless it failed)
        self._redact_logprobs()
        content = self.streams[CONTENT].text()
        message = Message.objects.select_related("conversation").get(pk=self.message_id)
        message.content = content
        message.reasoning = self.streams[REASONING].text()
        message.choices = self.choices()
        if message.choices and message.shown_mode == "chat":
            for choice in message.choices:
                choice["html"] = str(render_markdown(choice["content"]))
        message.logprobs = self.logprobs.get(0)
        # As received, but an echoed secret is no more kept here than in the error.
        message.raw_response = self._raw_redacted()
        message.rendered = render_markdown(content)
        message.status = status
        message.finish_reason = self.finish_reason
        message.usage = self.usage
        message.metrics = self.metrics(time.monotonic())
        calls = self.tools.finished()
        for call in calls or []:
            # Arguments as streamed (and shown) were redacted; the saved call is too.
            function = call.get("function") or {}
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    function[key] = redact_text(function[key], self.endpoint)
        if calls and self.finish_reason == "function_call":
            for number, call in enumerate(calls):
                call["id"] = f"{LEGACY_CALL_PREFIX}{number}"
        message.tool_calls = calls or None
        message.request_body = self.body
        if "model" not in self.body:
            # No model sent (the endpoint's default): name the one the endpoint says it used.
            message.model = response_model(self.raw) or message.model
        message.error = self.error.as_dict() if self.error else None
        message.heartbeat_at = timezone.now()
        message.save()
        if self.learned_quirks and self.profile_id:
            profile = EndpointProfile.objects.get(pk=self.profile_id)
            profile.quirks = {**profile.quirks, **self.learned_quirks}
            profile.save(update_fields=["quirks", "updated_at"])
        return frames.answer_final(message)

    def _redact_logprobs(self) -> None:
        """Echoed secrets out of the logprob tokens, as out of the text they spell (the
        tokens are saved, shown under "Token probabilities" and exported)."""
        if not self.secrets:
            return
        for choice, tokens in self.logprobs.items():
            self.logprobs[choice], cut = _redacted_tokens(tokens, self.secrets)
            sources = self.logprob_sources.get(choice, [])
            for number, piece in cut:
                self.logprob_fragments.append(
                    (sources[number] if number < len(sources) else -1, piece)
                )

    def _raw_redacted(self) -> list[str]:
        """The raw lines without the secrets: whole ones by text, and the pieces of one
        the endpoint split across deltas in the text fields of the lines they came in
        (logprob tokens too, whose bytes go where their token changed)."""
        pieces: dict[int, set[str]] = {}
        fragments = [f for stream in self.streams.values() for f in stream.fragments]
        for source, piece in [*fragments, *self.logprob_fragments]:
            pieces.setdefault(source, set()).add(piece)
        out = []
        for number, line in enumerate(self.raw):
            redacted = redact_text(line, self.endpoint) or ""
            if pieces.get(number) or redacted != line:
                redacted = _redact_pieces(
                    redacted, sorted(pieces.get(number, ()), key=len, reverse=True)
                )
            out.append(redacted)
        return out

    @database_sync_to_async
    def _persist_failure(self, exc: Exception) -> str:
        Message.objects.filter(pk=self.message_id).update(
            content=self.streams[CONTENT].text(),
            status=Message.Status.ERROR,
            error={"message": f"The answer could not be saved completely: {exc}"},
            heartbeat_at=timezone.now(),
        )
        message = Message.objects.select_related("conversation").filter(pk=self.message_id).first()
        if message is None:
            return ""
        return frames.message(message)


_TEXT_KEYS = {"content", "reasoning_content", "reasoning", "arguments", "text", "name"}
# Logprob tokens: chat ``{"token", "bytes"}`` entries, legacy ``tokens`` lists and
# ``top_logprobs`` dicts keyed by token.
_TOKEN_KEYS = {"token", "tokens"}


def _redacted_tokens(
    tokens: list[dict[str, Any]], secrets: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Logprob tokens with every secret their joined text spells replaced: the token where
    an occurrence starts has [redacted] in place of its part of it, the other tokens it
    spans lose their part (often becoming ""), and every token touched loses its
    alternatives (they are guesses at the secret). Also the pieces cut out, with the
    number of the token each came from."""
    texts = [t["token"] if isinstance(t.get("token"), str) else "" for t in tokens]
    text = "".join(texts)
    spans, pos = [], 0
    while True:
        found = [(i, sec) for sec in secrets if (i := text.find(sec, pos)) >= 0]
        if not found:
            break
        i, secret = min(found, key=lambda f: (f[0], -len(f[1])))
        spans.append((i, i + len(secret)))
        pos = i + len(secret)
    out: list[dict[str, Any]] = []
    cut: list[tuple[int, str]] = []
    at = 0
    for number, (item, token) in enumerate(zip(tokens, texts, strict=True)):
        a, b = at, at + len(token)
        at = b
        parts, cursor = [], a
        for i, j in spans:
            lo, hi = max(a, i), min(b, j)
            if lo < hi:
                parts.append(text[cursor:lo] + (REDACTED if lo == i else ""))
                cut.append((number, text[lo:hi]))
                cursor = hi
        top = item.get("top")
        if parts:
            out.append({**item, "token": "".join(parts) + text[cursor:b], "top": []})
        elif isinstance(top, list) and any(
            sec in alt.get("token", "") for alt in top if isinstance(alt, dict) for sec in secrets
        ):
            out.append({**item, "top": [_alt_redacted(alt, secrets) for alt in top]})
        else:
            out.append(item)
    return out, cut


def _alt_redacted(alt: Any, secrets: tuple[str, ...]) -> Any:
    if not isinstance(alt, dict) or not isinstance(alt.get("token"), str):
        return alt
    token = alt["token"]
    for secret in secrets:
        token = token.replace(secret, REDACTED)
    return {**alt, "token": token}


def _redact_pieces(line: str, pieces: list[str]) -> str:
    """A raw JSON line with `pieces` replaced in its text fields and logprob tokens (never
    in other keys, ids or values: a piece may be a single character); a logprob entry
    whose token no longer matches its bytes loses them."""
    try:
        data = json.loads(line)
    except ValueError:
        return line

    def replaced(text: str) -> str:
        for piece in pieces:
            text = text.replace(piece, REDACTED)
        return text

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            legacy = all(v is None or isinstance(v, int | float) for v in value.values())
            if key == "top_logprobs" and legacy and "token" not in value:  # {token: logprob}
                return {replaced(k): v for k, v in value.items()}
            out = {k: walk(v, k) for k, v in value.items()}
            if "bytes" in out and not _bytes_spell(out["bytes"], out.get("token")):
                out["bytes"] = None
            return out
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and (key in _TEXT_KEYS or key in _TOKEN_KEYS):
            return replaced(value)
        return value

    return json.dumps(walk(data), ensure_ascii=False)


def _bytes_spell(raw: Any, token: Any) -> bool:
    if raw is None:
        return True
    try:
        return bytes(raw).decode("utf-8") == token
    except (TypeError, ValueError):
        return False


class RunControl:
    """This process's mailbox on the channel layer: Stop and snapshot requests for
    runs it owns arrive here, whichever worker the asking socket is on."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RunControl] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, layer: Any, channel_name: str) -> None:
        self.layer = layer
        self.channel_name = channel_name
        self.task = asyncio.create_task(self._listen())

    @classmethod
    async def get(cls) -> RunControl:
        loop = asyncio.get_running_loop()
        control = cls._by_loop.get(loop)
        if control is None:
            layer = get_channel_layer()
            # The default prefix on purpose: channels-redis reads all of a process's
            # channels of one prefix through one lock, so another prefix would starve
            # the consumers' channels while this one waits.
            channel = await layer.new_channel()
            control = cls._by_loop.get(loop)  # another run may have won the race
            if control is None:
                control = cls._by_loop[loop] = cls(layer, channel)
        return control

    async def _listen(self) -> None:
        while True:
            message = await self.layer.receive(self.channel_name)
            run = _registry.get(message.get("message_id"))
            if run is None:
                continue
            if message["type"] == "run.stop":
                run.stop()
            elif message["type"] == "run.snapshot_request":
                await self.layer.send(message["reply_to"], run.snapshot())


# --- the module's API -------------------------------------------------------------------
def local_run(message_id: int) -> Run | None:
    return _registry.get(message_id)


def placeholders_ready(placeholders: list[Message]) -> list[Message]:
    """Build and save each placeholder's exact request body (set on the object too),
    before anything renders or sends it. Synchronous: for a caller already in the
    database thread, right after the service that created the placeholders."""
    from chat.services import request_body_build

    for message in placeholders:
        body = request_body_build(lane=message.lane, assistant=message)
        Message.objects.filter(pk=message.pk).update(request_body=body)
        message.request_body = body
    return placeholders


def run_for(placeholder: Message) -> Run:
    """The one way to build a Run: from a placeholder whose request body is saved
    (``placeholders_ready``), its lane, profile and conversation at hand. Nothing is
    sent until ``run_launch``."""
    lane: Lane = placeholder.lane
    profile = lane.profile
    prices = (
        float(profile.price_input) if profile.price_input is not None else None,
        float(profile.price_output) if profile.price_output is not None else None,
    )
    return Run(
        message_id=placeholder.pk,
        conversation_group=lane.conversation.group_name,
        endpoint=endpoint_for(profile),
        body=placeholder.request_body,
        profile_id=lane.profile_id,
        path="completions" if lane.conversation.mode == "completion" else "chat/completions",
        prices=prices,
    )


def run_launch(run: Run, *, repeats: int = 0) -> Run:
    """Start ``run``; with ``repeats``, that many more tries follow in its lane, one
    after another (``_repeat_loop``)."""
    _registry[run.message_id] = run
    # A fresh context: inherited from a request, asgiref's thread-sensitive context
    # would send the run's database calls to that request's (finished) thread.
    run.task = asyncio.create_task(
        run.main(), name=f"run-{run.message_id}", context=contextvars.Context()
    )
    if repeats > 0:
        asyncio.create_task(
            _repeat_loop(run, repeats),
            name=f"repeats-{run.message_id}",
            context=contextvars.Context(),
        )
    return run


async def run_start(message_id: int) -> Run:
    """``run_launch`` for a placeholder known by its id (saved outside the socket)."""

    def build() -> Run:
        placeholder = Message.objects.select_related("lane__profile", "lane__conversation")
        return run_for(placeholders_ready([placeholder.get(pk=message_id)])[0])

    return run_launch(await database_sync_to_async(build)())


async def _repeat_loop(run: Run, repeats: int) -> None:
    """Repeat runs: sequential, not concurrent, so the tries don't slow each other down.
    Each waits for the one before to end (and be announced); Stop ends the series."""
    for _ in range(repeats):
        assert run.task is not None
        try:
            await run.task
        except BaseException:
            return  # the process is shutting down
        if run.stop_requested:
            return
        html, run = await _attempt_next(run.message_id)
        await get_channel_layer().group_send(run.group, {"type": "turn.started", "html": html})
        run_launch(run)


@database_sync_to_async
def _attempt_next(done_id: int) -> tuple[str, Run]:
    """A new attempt after answer ``done_id``, ready to run, and its lane's cell."""
    from chat.services import answer_attempt_new

    done = Message.objects.select_related("lane").get(pk=done_id)
    placeholder = answer_attempt_new(lane=done.lane, turn=done.turn, branch=done.branch)
    run = run_for(placeholders_ready([placeholder])[0])
    return frames.cell(done.lane, done.turn), run


async def run_stop(message_id: int) -> None:
    run = local_run(message_id)
    if run is not None:
        run.stop()
        return
    await get_channel_layer().group_send(
        run_group(message_id), {"type": "run.stop", "message_id": message_id}
    )


async def snapshot_request(message_id: int, reply_to: str) -> None:
    await get_channel_layer().group_send(
        run_group(message_id),
        {"type": "run.snapshot_request", "message_id": message_id, "reply_to": reply_to},
    )
