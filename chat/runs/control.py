"""Reaching runs: this process's runs by message id, and its mailbox on the channel
layer (group ``run.<message id>``), where Stop and snapshot requests arrive from any
process's sockets. Also the one announcement of a started turn to its pages."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer


class Reachable(Protocol):
    def stop(self) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...


# Runs owned by this process, by assistant message id.
registry: dict[int, Reachable] = {}


def run_group(message_id: int) -> str:
    return f"run.{message_id}"


async def announce(group: str, html: str) -> None:
    """Every page on the conversation shows ``html`` (a started turn, or the turns of
    the version now shown) before any frame of its answers can reach it."""
    await get_channel_layer().group_send(group, {"type": "turn.started", "html": html})


class Mailbox:
    """This process's mailbox on the channel layer: Stop and snapshot requests for
    runs it owns arrive here, whichever worker the asking socket is on."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Mailbox] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, layer: Any, channel_name: str) -> None:
        self.layer = layer
        self.channel_name = channel_name
        self.task = asyncio.create_task(self._listen())

    @classmethod
    async def get(cls) -> Mailbox:
        loop = asyncio.get_running_loop()
        mailbox = cls._by_loop.get(loop)
        if mailbox is None:
            layer = get_channel_layer()
            # The default prefix on purpose: channels-redis reads all of a process's
            # channels of one prefix through one lock, so another prefix would starve
            # the consumers' channels while this one waits.
            channel = await layer.new_channel()
            mailbox = cls._by_loop.get(loop)  # another run may have won the race
            if mailbox is None:
                mailbox = cls._by_loop[loop] = cls(layer, channel)
        return mailbox

    async def join(self, message_id: int) -> None:
        await self.layer.group_add(run_group(message_id), self.channel_name)

    async def leave(self, message_id: int) -> None:
        await self.layer.group_discard(run_group(message_id), self.channel_name)

    async def _listen(self) -> None:
        while True:
            message = await self.layer.receive(self.channel_name)
            run = registry.get(message.get("message_id"))
            if run is None:
                continue
            if message["type"] == "run.stop":
                run.stop()
            elif message["type"] == "run.snapshot_request":
                await self.layer.send(message["reply_to"], run.snapshot())


def local_run(message_id: int) -> Any:
    """This process's run of answer ``message_id`` (a ``chat.runs.Run``), or None."""
    return registry.get(message_id)


def local_ids() -> list[int]:
    """The answers this process is running."""
    return list(registry)


async def stop(message_id: int) -> None:
    """Stop the run of answer ``message_id``, in whichever process it runs."""
    run = registry.get(message_id)
    if run is not None:
        run.stop()
        return
    await get_channel_layer().group_send(
        run_group(message_id), {"type": "run.stop", "message_id": message_id}
    )


async def snapshot_request(message_id: int, reply_to: str) -> None:
    """Ask the run's owner (any process) to send its snapshot to channel ``reply_to``."""
    await get_channel_layer().group_send(
        run_group(message_id),
        {"type": "run.snapshot_request", "message_id": message_id, "reply_to": reply_to},
    )
