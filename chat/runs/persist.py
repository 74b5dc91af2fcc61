"""A run in the database: the heartbeat of a streaming answer, and the answer as saved
when the run ends (with the frame that shows it)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import frames
from chat.models import EndpointProfile, Message
from chat.request_body import LEGACY_CALL_PREFIX
from chat.runs.stream import CONTENT, REASONING, response_model, text_field
from chat.toolschema import calls_verdicts

if TYPE_CHECKING:
    from chat.runs.run import Run


@database_sync_to_async
def save_partial(run: Run) -> None:
    Message.objects.filter(pk=run.message_id, status=Message.Status.STREAMING).update(
        content=run.streams[CONTENT].text(),
        reasoning=run.streams[REASONING].text(),
        heartbeat_at=timezone.now(),
    )


def metrics(run: Run, ended: float) -> dict[str, Any]:
    metrics: dict[str, Any] = {"total_ms": round((ended - run.started) * 1000)}
    if run.first_token_at is None:
        return metrics
    metrics["ttft_ms"] = round((run.first_token_at - run.started) * 1000)
    tokens = (run.usage or {}).get("completion_tokens")
    estimated = tokens is None
    if estimated:
        # ~4 characters a token for English text; labelled as an estimate.
        chars = sum(stream.length for stream in run.streams.values())
        tokens = max(1, round(chars / 4))
    generating = ended - run.first_token_at
    if generating > 0.001 and tokens:
        metrics["tokens_per_s"] = round(tokens / generating, 1)
        metrics["tokens_estimated"] = estimated
    metrics["completion_tokens"] = tokens
    if run.retries:
        metrics["retries"] = run.retries
    price_in, price_out = run.prices
    if run.usage and (price_in is not None or price_out is not None):
        metrics["cost"] = (
            (run.usage.get("prompt_tokens") or 0) * (price_in or 0)
            + (run.usage.get("completion_tokens") or 0) * (price_out or 0)
        ) / 1_000_000
    return metrics


def choices(run: Run) -> list[dict[str, Any]] | None:
    indices = sorted({0, *run.finish_reasons, *run.logprobs} | {
        int(name[1:]) for name in run.streams if name.startswith("t") and name != CONTENT
    })  # fmt: skip
    if indices == [0]:
        return None
    return [
        {
            "index": i,
            "content": run.streams[text_field(i)].text() if text_field(i) in run.streams else "",
            "finish_reason": run.finish_reasons.get(i, ""),
            "logprobs": run.logprobs.get(i),
        }
        for i in indices
    ]


def logprobs_redact(run: Run) -> None:
    """Echoed secrets out of the logprob tokens, as out of the text they spell (the
    tokens are saved, shown under "Token probabilities" and exported)."""
    if not run.secrets:
        return
    for choice, tokens in run.logprobs.items():
        run.logprobs[choice], cut = run.secrets.tokens(tokens)
        sources = run.logprob_sources.get(choice, [])
        for number, piece in cut:
            run.logprob_fragments.append((sources[number] if number < len(sources) else -1, piece))


def raw_redacted(run: Run) -> list[str]:
    """The raw lines without the secrets: whole ones (out since they were recorded), and
    the pieces of one split across deltas, in the lines they came in (logprob tokens too,
    whose bytes go where their token changed)."""
    pieces: dict[int, set[str]] = {}
    fragments = [f for stream in run.streams.values() for f in stream.fragments]
    for source, piece in [*fragments, *run.logprob_fragments]:
        pieces.setdefault(source, set()).add(piece)
    return [run.secrets.raw(line, pieces.get(n, ())) for n, line in enumerate(run.raw)]


@database_sync_to_async
def persist_final(run: Run, status: str) -> str:
    from chat.render import render_markdown

    for stream in run.streams.values():
        stream.flush()  # (done by the sender already, unless it failed)
    logprobs_redact(run)
    content = run.streams[CONTENT].text()
    message = Message.objects.select_related("conversation").get(pk=run.message_id)
    message.content = content
    message.reasoning = run.streams[REASONING].text()
    message.choices = choices(run)
    if message.choices and message.shown_mode == "chat":
        for choice in message.choices:
            choice["html"] = str(render_markdown(choice["content"]))
    message.logprobs = run.logprobs.get(0)
    # As received, but an echoed secret is no more kept here than in the error.
    message.raw_response = raw_redacted(run)
    message.rendered = render_markdown(content)
    message.status = status
    message.finish_reason = run.finish_reason
    message.usage = run.usage
    message.metrics = metrics(run, time.monotonic())
    calls = run.tools.finished()
    # Arguments as streamed (and shown) were redacted piece by piece; the saved call is too.
    calls = run.secrets.value(calls)
    if calls and run.finish_reason == "function_call":
        for number, call in enumerate(calls):
            call["id"] = f"{LEGACY_CALL_PREFIX}{number}"
    message.tool_calls = calls or None
    # Checked here, once, in linear time; pages only read the verdict.
    message.tool_verdicts = calls_verdicts(calls, run.body.get("tools") or []) if calls else None
    message.request_body = run.body
    if "model" not in run.body:
        # No model sent (the endpoint's default): name the one the endpoint says it used.
        message.model = response_model(run.raw) or message.model
    message.error = run.error.as_dict() if run.error else None
    message.heartbeat_at = timezone.now()
    message.save()
    if run.learned_quirks and run.profile_id:
        profile = EndpointProfile.objects.get(pk=run.profile_id)
        profile.quirks = {**profile.quirks, **run.learned_quirks}
        profile.save(update_fields=["quirks", "updated_at"])
    return frames.answer_final(message)


@database_sync_to_async
def persist_failure(run: Run, exc: Exception) -> str:
    Message.objects.filter(pk=run.message_id).update(
        content=run.streams[CONTENT].text(),
        status=Message.Status.ERROR,
        error={"message": f"The answer could not be saved completely: {exc}"},
        heartbeat_at=timezone.now(),
    )
    message = Message.objects.select_related("conversation").filter(pk=run.message_id).first()
    if message is None:
        return ""
    return frames.message(message)
