"""One generation: upstream events -> accumulate -> persist -> broadcast.

A run lives in the process that started it, not in a socket: closing the tab does not
stop it. It is reachable from any process through the channel layer (group
``run.<message id>``), which is how Stop and snapshot requests find it.

Traffic is kept linear in the answer's length: deltas are coalesced (the first at once,
then at most one frame per RUN_FRAME_INTERVAL) and frames carry only new text, with its
offset so every receiver can drop what it already has.

This module builds and starts runs; the rest of the package is the run itself (run.py),
its accumulated text (stream.py; echoed secrets: chat.upstream.secrets), its frames to the pages
and its mailbox (broadcast.py), and the database (persist.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import frames
from chat.models import Lane, Message
from chat.runs.broadcast import (
    RunControl,
    _registry,
    local_run,
    run_group,
    run_stop,
    snapshot_request,
)
from chat.runs.run import BACKOFF, MAX_ATTEMPTS, RETRY_AFTER_CAP, Run, endpoint_for
from chat.runs.stream import CONTENT, REASONING, TextStream, text_field

__all__ = [
    "BACKOFF", "CONTENT", "MAX_ATTEMPTS", "REASONING", "RETRY_AFTER_CAP", "Run",
    "RunControl", "TextStream", "_registry",
    "EarlyRuns", "endpoint_for", "local_run", "run_early", "run_for",
    "run_group", "run_launch", "run_start", "run_stop", "snapshot_request", "text_field",
]  # fmt: skip


def run_for(placeholder: Message) -> Run:
    """The one way to build a Run: from a placeholder whose request body is saved
    (the actions that create placeholders return them so), its lane, profile and
    conversation at hand. Nothing is sent until ``run_launch``."""
    return run_early(placeholder.lane, placeholder.request_body, message_id=placeholder.pk)


def run_early(lane: Lane, body: dict[str, Any], *, message_id: int = 0) -> Run:
    """A Run for ``lane`` asking with ``body``; its message id may come later (a send
    starts its requests before its placeholders are saved: ``Run.prefetch``)."""
    profile = lane.profile
    prices = (
        float(profile.price_input) if profile.price_input is not None else None,
        float(profile.price_output) if profile.price_output is not None else None,
    )
    return Run(
        message_id=message_id,
        conversation_group=lane.conversation.group_name,
        endpoint=endpoint_for(profile),
        body=body,
        profile_id=lane.profile_id,
        path="completions" if lane.conversation.mode == "completion" else "chat/completions",
        prices=prices,
    )


class EarlyRuns:
    """The requests a send starts before its turn is saved (``turns.turn_send``'s
    ``early``): ``start`` is called on the database thread with each lane's body and
    sends them from the event loop; after the save, ``claim`` pairs them with the
    saved placeholders, and ``abandon`` drops them if the save failed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.runs: list[Run] = []

    def start(self, bodies: list[tuple[Lane, dict[str, Any]]]) -> None:
        for lane, body in bodies:
            run = run_early(lane, body)
            self.runs.append(run)

            self.loop.call_soon_threadsafe(run.prefetch)

    def abandon(self) -> None:
        """On the event loop: a prefetch still queued behind this runs first, so every
        request is cancelled, none left running."""
        for run in self.runs:
            self.loop.call_soon(run.abandon)

    def claim(self, placeholders: list[Message]) -> list[Run]:
        """The early Runs, ready for ``run_launch``: turn_send hands over the bodies of
        the placeholders it saves, in their order, so each Run takes its placeholder's
        id."""
        for run, placeholder in zip(self.runs, placeholders, strict=True):
            run.message_id = placeholder.pk
        return self.runs


# Repeat series under way (see run_launch).
_series: set[asyncio.Task[None]] = set()


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
        series = asyncio.create_task(
            _repeat_loop(run, repeats),
            name=f"repeats-{run.message_id}",
            context=contextvars.Context(),
        )
        _series.add(series)  # the loop keeps only a weak reference
        series.add_done_callback(_series.discard)
    return run


async def run_start(message_id: int) -> Run:
    """``run_launch`` for a placeholder known by its id (saved outside the socket)."""

    def build() -> Run:
        placeholder = Message.objects.select_related("lane__profile", "lane__conversation")
        return run_for(placeholder.get(pk=message_id))

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
    from chat.turns import attempt_next

    done = Message.objects.select_related("lane").get(pk=done_id)
    run = run_for(attempt_next(lane=done.lane, turn=done.turn, branch=done.branch))
    return frames.cell(done.lane, done.turn), run
