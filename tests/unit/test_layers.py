"""chat.sockets.layer: Channels' in-memory layer with constant per-message costs, same behaviour."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.exceptions import ChannelFull

from chat.sockets.layer import InMemoryChannelLayer


async def test_a_group_send_reaches_every_member_in_order_as_copies():
    layer = InMemoryChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    nested = {"type": "run.snapshot", "fields": {"t": "hello"}, "calls": [{"slot": 0}]}
    await layer.group_send("g", {"type": "run.delta", "offset": 0, "text": "one"})
    await layer.group_send("g", nested)
    for channel in (a, b):
        first, second = await layer.receive(channel), await layer.receive(channel)
        assert first == {"type": "run.delta", "offset": 0, "text": "one"}
        assert second == nested and second is not nested
        second["fields"]["t"] = "changed by one receiver"
    assert nested["fields"]["t"] == "hello"  # nested values are still deep-copied


async def test_a_full_member_misses_a_group_message_but_others_get_it():
    layer = InMemoryChannelLayer(capacity=1)
    full, ok = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", full)
    await layer.send(full, {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "x"})
    await layer.group_add("g", ok)
    await layer.group_send("g", {"type": "y"})
    assert (await layer.receive(ok))["type"] == "y"
    assert (await layer.receive(full))["type"] == "x"


async def test_expired_messages_are_still_dropped(monkeypatch):
    layer = InMemoryChannelLayer(expiry=60)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.send(channel, {"type": "old"})
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    layer._cleaned_at = -1e9  # the walk is due
    await layer.send(channel, {"type": "new"})  # the old one expires on the next walk
    assert (await asyncio.wait_for(layer.receive(channel), 1))["type"] == "new"
    assert channel not in layer.groups.get("g", {})  # expiry also leaves the groups
