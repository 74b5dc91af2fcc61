"""A run and the pages: coalesced deltas to the conversation's group, and this
process's mailbox (RunControl) where Stop and snapshot requests for its runs arrive."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.conf import settings

from chat.runs.persist import save_partial

if TYPE_CHECKING:
    from chat.runs.run import Run

# Runs owned by this process, by assistant message id.
_registry: dict[int, Run] = {}


def run_group(message_id: int) -> str:
    return f"run.{message_id}"


async def send_loop(run: Run, layer: Any) -> None:
    """Broadcast coalesced deltas and save a heartbeat about once a second.

    One timer per frame (the coalescing sleep) and one per heartbeat: a quiet stream
    is woken for its heartbeat by a timer armed once per save, not by a timeout around
    every wait (``wait_for`` made a task and a timer for each frame)."""
    loop = asyncio.get_running_loop()
    last_save = loop.time()
    heartbeat = [loop.call_at(last_save + settings.RUN_SAVE_INTERVAL, run._wake.set)]
    try:
        await _send_frames(run, layer, last_save, heartbeat)
    finally:
        heartbeat[0].cancel()


async def _send_frames(
    run: Run, layer: Any, last_save: float, heartbeat: list[asyncio.TimerHandle]
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await run._wake.wait()
        run._wake.clear()
        # Read `finished` before draining: if the stream ends while a send below is
        # awaited, its last deltas are flushed on the next pass instead of being lost.
        finished = run.finished
        if finished:
            for stream in run.streams.values():
                stream.flush()
        while run.new_calls:
            # A call's element must reach the pages before its arguments do.
            slot = run.new_calls.pop(0)["slot"]
            await layer.group_send(
                run.group,
                {"type": "run.toolcall", "message_id": run.message_id, **run.call_info(slot)},
            )
        for name, stream in list(run.streams.items()):
            if stream.pending:
                offset, chunk = stream.take_pending()
                event = {
                    "type": "run.delta",
                    "message_id": run.message_id,
                    "field": name,
                    "offset": offset,
                    "text": chunk,
                }
                block = await run._commit(name, chunk)
                if block is not None:
                    event["block"] = block

                await layer.group_send(run.group, event)
        if finished:
            return
        now = loop.time()
        if now - last_save >= settings.RUN_SAVE_INTERVAL:
            last_save = now
            await save_partial(run)
        if heartbeat[0].when() <= loop.time():  # it went off: arm the next one
            heartbeat[0] = loop.call_at(last_save + settings.RUN_SAVE_INTERVAL, run._wake.set)
        await asyncio.sleep(settings.RUN_FRAME_INTERVAL)


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


def local_run(message_id: int) -> Run | None:
    return _registry.get(message_id)


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
