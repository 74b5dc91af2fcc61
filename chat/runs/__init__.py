"""Runs: one generation each, from a request to a saved answer.

A run lives in the process that started it, not in a socket: closing the tab does not
stop it. It is reachable from any process through the channel layer (control.py), which
is how Stop and snapshot requests find it.

``start`` is the one way a run begins: it does a user's action (chat.actions) on the
database thread, announces the started turn to every page, then launches a run per
placeholder. The rest of the package is the run itself: the request (run.py), the
answer it adds up (answer.py), its relay to the pages (relay.py), its saves (store.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from functools import partial
from typing import Any

from channels.db import database_sync_to_async

from chat import actions
from chat.actions import Started
from chat.models import Lane
from chat.request_body import responses_fallback
from chat.runs import control
from chat.runs.control import announce, local_ids, snapshot_request, stop
from chat.runs.run import MAX_ATTEMPTS, Run

__all__ = [
    "MAX_ATTEMPTS", "NotStarted", "Run", "announce", "local_ids", "local_run",
    "snapshot_request", "start", "stop",
]  # fmt: skip

# An action of chat.actions with its arguments bound (functools.partial): called on the
# database thread with ``early`` (an EarlyStart, or None).
Action = Callable[..., Started]


def local_run(message_id: int) -> Run | None:
    """This process's run of answer ``message_id``, if it has one."""
    return control.local_run(message_id)


def _run(lane: Lane, body: dict[str, Any], message_id: int = 0) -> Run:
    """A Run for ``lane`` asking with ``body`` (lane, profile and conversation at hand)."""
    profile = lane.profile
    prices = (
        float(profile.price_input) if profile.price_input is not None else None,
        float(profile.price_output) if profile.price_output is not None else None,
    )
    fallback = responses_fallback(lane, body) if lane.wire_api == "responses" else None
    return Run(
        message_id=message_id,
        fallback=fallback,
        group=lane.conversation.group_name,
        endpoint=profile.endpoint(),
        body=body,
        profile_id=lane.profile_id,
        path=lane.api_path,
        prices=prices,
    )


async def start(action: Action, *, early: bool = False, repeats: int = 0) -> list[Run]:
    """Do ``action``; every page gets the turn it started; then each answer's run starts
    (with ``repeats``, that many more tries follow in its lane, one after another).
    An ActionError (or any failure) of the action propagates, and nothing runs.

    ``early``: each request is sent as soon as the action has checked the turn and built
    its bodies, while the turn is still being saved and rendered, so the endpoint's time
    to first token overlaps that work. What arrives meanwhile waits in the run until it
    is launched, after the turn's frame. If the save then fails, the requests are
    cancelled (actions that cannot hand bodies over early just start after the save)."""
    loop = asyncio.get_running_loop()
    early_runs: list[Run] = []

    def hand_over(bodies: list[tuple[Lane, dict[str, Any]]]) -> None:  # database thread
        for lane, body in bodies:
            run = _run(lane, body)
            early_runs.append(run)
            loop.call_soon_threadsafe(run.prefetch)

    def act() -> tuple[Started, list[Run]]:
        started = action(early=hand_over if early else None)
        if not early_runs:
            return started, [_run(p.lane, p.request_body, p.pk) for p in started.placeholders]
        # The action handed over the bodies of the placeholders it saved, in their order.
        for run, placeholder in zip(early_runs, started.placeholders, strict=True):
            run.bind(placeholder.pk)
        return started, early_runs

    try:
        started, launched = await database_sync_to_async(act)()
    except BaseException:
        # On the event loop: a prefetch still queued behind this runs first, so every
        # request is cancelled, none left running.
        for run in early_runs:
            loop.call_soon(run.abandon)
        raise
    try:
        await announce(started.group, started.html)
    except BaseException as exc:
        # Saved, but the pages cannot be told (the channel layer failed): the answers do
        # not start (their frames would go the same way), and the requests sent early are
        # cancelled. Their placeholders show as interrupted once their heartbeat is stale.
        for run in early_runs:
            run.abandon()
        if isinstance(exc, Exception):
            raise NotStarted(started) from exc
        raise
    for run in launched:
        _launch(run, repeats=repeats)
    return launched


class NotStarted(Exception):
    """The action's changes are saved, but its answers could not start."""

    def __init__(self, started: Started) -> None:
        super().__init__("Saved, but the answers could not start.")
        self.started = started


# Repeat series under way (see _launch).
_series: set[asyncio.Task[None]] = set()


def _launch(run: Run, *, repeats: int = 0) -> None:
    control.registry[run.message_id] = run
    # A fresh context: inherited from a request, asgiref's thread-sensitive context
    # would send the run's database calls to that request's (finished) thread.
    run.task = asyncio.create_task(
        run.main(), name=f"run-{run.message_id}", context=contextvars.Context()
    )
    if repeats > 0:
        series = asyncio.create_task(
            _repeat(run, repeats), name=f"repeats-{run.message_id}", context=contextvars.Context()
        )
        _series.add(series)  # the loop keeps only a weak reference
        series.add_done_callback(_series.discard)


async def _repeat(run: Run, repeats: int) -> None:
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
        (run,) = await start(partial(actions.repeat, answer_id=run.message_id))
