"""Run the probes against one model: a few at a time, each with its own time limit.

Phase 1 finds what the rest depends on: the models list (a model to try when none was
given) and which token-limit field the endpoint takes.  Phase 2 runs the
other probes with that field; phase 3 probes run last, one by one, alone (seed: some
servers give another text when requests run at once).  Each result is handed to
``on_result`` as soon as it is known, so a page can show the table filling in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from chat.upstream import Endpoint

from .base import INCONCLUSIVE, UNSUPPORTED, Context, Outcome, Probe
from .probes import PROBES

log = logging.getLogger(__name__)

CONCURRENCY = 4
PROBE_TIMEOUT = 20.0  # seconds for a whole probe (a few requests at most)
CONNECT_TIMEOUT_CAP = 10.0
# A probe that could not tell because its answer was cut by its own token limit, or did
# not finish in time (a small model on a CPU server), is asked once more with this many
# times the tokens and twice the time, and says so.
RETRY_BUDGET = 4

OnResult = Callable[[dict[str, Any]], Awaitable[None]]


def probe_endpoint(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT) -> Endpoint:
    """The profile's endpoint with its timeouts capped for probing."""
    return dataclasses.replace(
        endpoint,
        connect_timeout=min(endpoint.connect_timeout, CONNECT_TIMEOUT_CAP, timeout),
        first_byte_timeout=min(endpoint.first_byte_timeout, timeout),
        idle_timeout=min(endpoint.idle_timeout, timeout),
    )


def row(probe: Probe, outcome: Outcome, ms: int | None) -> dict[str, Any]:
    return {
        "key": probe.key,
        "feature": probe.feature,
        "status": outcome.status,
        "summary": outcome.summary,
        "ms": ms,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "snippet": outcome.snippet,
        "sent": outcome.sent,
        "facts": outcome.facts,
    }


def _limit_field(results: dict[str, dict[str, Any]]) -> str | None:
    """The token-limit field the other probes send: the first one accepted."""
    status = {name: results[name]["status"] for name in ("max_tokens", "max_completion_tokens")}
    for name, value in status.items():
        if value not in (UNSUPPORTED, INCONCLUSIVE):
            return name
    if status["max_tokens"] == UNSUPPORTED:
        return None if status["max_completion_tokens"] == UNSUPPORTED else "max_completion_tokens"
    return "max_tokens"


async def _timed(probe: Probe, ctx: Context, timeout: float) -> tuple[Outcome, int]:
    """Run ``probe`` within ``timeout``: its outcome (can't tell when it timed out or
    failed) and how long it took in ms."""
    begun = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            outcome = await probe.run(ctx)
    except TimeoutError:
        outcome = Outcome(INCONCLUSIVE, f"No complete answer within {timeout:g} s")
    except Exception as exc:  # a probe's bug must not sink the whole check
        log.exception("compatibility probe %s failed", probe.key)
        outcome = Outcome(INCONCLUSIVE, f"The probe failed: {type(exc).__name__}: {exc}")
    return outcome, round((time.monotonic() - begun) * 1000)


def _worth_retrying(probe: Probe, outcome: Outcome) -> str:
    """Why ``outcome`` is worth a second try ("" when it is not): could not tell only
    because of the probe's own budget. The token-limit probes (phase 1) and the seed
    (phase 3, which compares answers) keep their one try."""
    if outcome.status != INCONCLUSIVE or probe.phase != 2:
        return ""
    if outcome.summary.startswith("No complete answer within"):
        return f"with {RETRY_BUDGET}× the tokens and twice the time"
    if "token limit" in outcome.summary:
        return f"with {RETRY_BUDGET}× the tokens"
    return ""


async def run_check(
    endpoint: Endpoint,
    model: str,
    *,
    on_result: OnResult | None = None,
    concurrency: int = CONCURRENCY,
    timeout: float = PROBE_TIMEOUT,
    probes: Iterable[Probe] = PROBES,
) -> dict[str, Any]:
    """Probe ``endpoint`` with ``model`` (or the first listed one when empty).

    Returns ``{"model", "limit_field", "duration_ms", "results": [row, ...]}`` with the
    rows in the order of ``probes``.
    """
    probes = tuple(probes)
    ctx = Context(endpoint=probe_endpoint(endpoint, timeout), model=model)
    gate = asyncio.Semaphore(concurrency)
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()

    async def finish(probe: Probe, outcome: Outcome, ms: int | None) -> None:
        # Answers and evidence are the endpoint's words: an echoed secret never reaches
        # the report (nor the page, the log or the database).
        results[probe.key] = ctx.endpoint.secrets.value(row(probe, outcome, ms))
        if on_result is not None:
            await on_result(results[probe.key])

    async def one(probe: Probe) -> None:
        async with gate:
            outcome, ms = await _timed(probe, ctx, timeout)
            why = _worth_retrying(probe, outcome)
            if why:
                bigger = dataclasses.replace(
                    ctx,
                    budget=RETRY_BUDGET,
                    endpoint=probe_endpoint(endpoint, timeout * 2),
                )
                again, more = await _timed(probe, bigger, timeout * 2)
                again.summary += f" (asked again {why}; the first time: {outcome.summary})"
                again.facts = {**again.facts, "retried": why}
                outcome, ms = again, ms + more
        await finish(probe, outcome, ms)

    async def run(group: list[Probe]) -> None:
        await asyncio.gather(*(one(p) for p in group))

    first = [p for p in probes if p.phase == 1]
    rest = [p for p in probes if p.phase == 2]
    last = [p for p in probes if p.phase not in (1, 2)]
    if not ctx.model:
        await run([p for p in first if p.key == "models"])
        listed = results.get("models", {}).get("facts", {}).get("models") or []
        ctx.model = listed[0] if listed else ""
        first = [p for p in first if p.key != "models"]
    if not ctx.model:
        await run([p for p in rest if p.key == "error_shape"])  # needs no model
        reason = Outcome(INCONCLUSIVE, "No model to try: set a default model or choose one")
        for probe in probes:
            if probe.key not in results:
                await finish(probe, reason, None)
    else:
        await run(first)
        if "max_tokens" in results and "max_completion_tokens" in results:
            ctx.limit_field = _limit_field(results)
        await run(rest)
        for probe in last:  # one at a time, alone
            await run([probe])
    return {
        "model": ctx.model,
        "limit_field": ctx.limit_field,
        "duration_ms": round((time.monotonic() - started) * 1000),
        "results": [results[p.key] for p in probes if p.key in results],
    }


def counts(results: Iterable[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out
