"""The Redis channel layer as configured must not drop a busy worker's frames.

channels-redis keeps all the sockets of one process in one Redis list and drops what a
group_send finds over capacity (logging it at INFO level only). With the old capacity of
1,000, 200 streaming sockets on a worker that fell behind lost deltas and final renders
(the side-by-side benchmark's scale-out run at C=200: 158 pages never saw their answer
end)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

pytestmark = pytest.mark.scale

SOCKETS = 200
FRAMES = 12  # 2,400 messages waiting in one process's list: past the old capacity


async def test_a_backlog_of_200_sockets_is_delivered_whole():
    """One conversation (group) per socket, as in the benchmark: each group_send is one
    message in the worker's list."""
    layer = get_channel_layer()
    run = uuid.uuid4().hex
    channels = [await layer.new_channel() for _ in range(SOCKETS)]
    groups = [f"capacity-{run}-{i}" for i in range(SOCKETS)]
    try:
        for group, channel in zip(groups, channels, strict=True):
            await layer.group_add(group, channel)
        # The worker is busy: nothing is read while the frames are sent.
        for k in range(FRAMES):
            for group in groups:
                await layer.group_send(group, {"type": "run.delta", "k": k})
        got: dict[str, list[int]] = {channel: [] for channel in channels}
        async with asyncio.timeout(20):
            for channel in channels:
                for _ in range(FRAMES):
                    got[channel].append((await layer.receive(channel))["k"])
        assert all(ks == list(range(FRAMES)) for ks in got.values())
    finally:
        for group, channel in zip(groups, channels, strict=True):
            await layer.group_discard(group, channel)
