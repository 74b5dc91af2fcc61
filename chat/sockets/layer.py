"""The embedded channel layer: Channels' in-memory layer, its per-message cost made
constant.

Channels' ``InMemoryChannelLayer`` walks every queue and every group membership of the
process (``_clean_expired``) on each ``receive`` and each ``group_send``, deep-copies
every message, and sends to a group through one task per member. With a few hundred
open tabs that walk is most of the cost of relaying a delta frame, and it grows with
the number of sockets, not with the work. Here the walk runs at most once a second
(messages expire after a minute, so that is as prompt as it needs to be), a message of
plain values is copied shallowly (strings and numbers are immutable; anything nested is
still deep-copied), and a group is sent to in a loop: each send only puts on a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

_PLAIN = (str, int, float, bool, type(None))


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    for value in message.values():
        if not isinstance(value, _PLAIN):
            return deepcopy(message)
    return dict(message)


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    clean_interval = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_interval:
            return
        self._cleaned_at = now
        super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            # As Channels does: a full channel misses the message.
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)
