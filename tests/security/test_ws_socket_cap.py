"""Open sockets per user are capped (WS_MAX_PER_USER), counted in the database so the
cap holds across workers; a dead worker's sockets stop counting once its heartbeat is
stale. Before: any number of sockets per user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat import history
from chat.models import LiveSocket
from chat.sockets import auth as wsauth
from tests.faults.runner import ws_app

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_user(name: str):
    return get_user_model().objects.create_user(name, password="a-long-passphrase-42")


async def sidebar(user) -> tuple[WebsocketCommunicator, int | None]:
    """A socket, and the code it was closed with at once (None: it stays open)."""
    comm = WebsocketCommunicator(ws_app, "/ws/sidebar/")
    comm.scope["user"] = user
    connected, code = await comm.connect()
    assert connected, code
    # An open socket answers a change of the list; a refused one was closed right after
    # it was accepted, so its next output is that close.
    await get_channel_layer().group_send(
        history.sidebar_group(user.pk), {"type": "sidebar.changed"}
    )
    output = await comm.receive_output(timeout=10)
    if output["type"] == "websocket.close":
        return comm, output["code"]
    return comm, None


async def test_the_socket_past_the_limit_is_closed_with_a_reason(settings):
    settings.WS_MAX_PER_USER = 3
    ann, bob = await make_user("ann"), await make_user("bob")
    opened = []
    for _ in range(3):
        comm, code = await sidebar(ann)
        assert code is None
        opened.append(comm)
    comm, code = await sidebar(ann)
    assert code == wsauth.CLOSE_TOO_MANY
    await comm.disconnect()
    # Another user is not affected.
    other, code = await sidebar(bob)
    assert code is None
    # A socket closed frees its place.
    await opened.pop().disconnect()
    comm, code = await sidebar(ann)
    assert code is None
    opened.append(comm)
    for comm in [*opened, other]:
        await comm.disconnect()
    assert await database_sync_to_async(LiveSocket.objects.count)() == 0


async def test_a_dead_workers_sockets_stop_counting(settings):
    settings.WS_MAX_PER_USER = 2
    ann = await make_user("ann")

    @database_sync_to_async
    def left_by_a_dead_worker(seen_ago: float) -> None:
        for _ in range(2):
            LiveSocket.objects.create(
                user=ann, worker="dead", seen_at=timezone.now() - timedelta(seconds=seen_ago)
            )

    await left_by_a_dead_worker(seen_ago=1)  # still fresh: they count
    comm, code = await sidebar(ann)
    assert code == wsauth.CLOSE_TOO_MANY
    await comm.disconnect()
    await database_sync_to_async(LiveSocket.objects.all().delete)()
    await left_by_a_dead_worker(seen_ago=wsauth.STALE_AFTER + 1)
    comm, code = await sidebar(ann)
    assert code is None
    await comm.disconnect()
