"""A real daphne (as `make run` serves it) takes every frame a legal message makes, and
answers one past the app's limits instead of dropping the socket.

Before: daphne's default websocket message limit (1 MiB) dropped a 1.1 MB text frame
without a close frame, and nothing reached the consumer."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from chat import conversations
from chat.models import EndpointProfile, Message
from tests.bench.wire import session_key_for, ws_connect
from tests.faults.runner import connect

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_text_frame_over_1_mib_gets_an_answer_not_a_dropped_socket(app_server, django_user_model):
    user = django_user_model.objects.create_user("bo", password="a-long-passphrase-42")
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    session = session_key_for(user)

    async def exchange() -> list[str]:
        socket = await ws_connect(app_server, conversation.pk, session)
        try:
            big = json.dumps({"action": "send", "content": "x" * int(1.1 * 1024 * 1024)})
            await socket.send(big)
            first = await asyncio.wait_for(socket.recv(), 10)
            # Still open: the next frame is answered too.
            await socket.send(json.dumps({"action": "nothing"}))
            second = await asyncio.wait_for(socket.recv(), 10)
            return [first, second]
        finally:
            await socket.close()

    first, second = asyncio.run(exchange())
    assert 'id="composer"' in first and "characters; the limit is 200,000." in first
    assert len(first) < 10_000  # the refused text is not sent back
    assert "Unknown action" in second
    assert not Message.objects.filter(conversation=conversation).exists()


def test_the_launcher_gives_daphne_the_apps_limit_unless_told_otherwise(settings):
    from chat.serve import daphne_argv

    args = daphne_argv(["-p", "8000", "playground.asgi:application"])
    size = str(settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE)
    assert args[:4] == ["--websocket-max-message-size", size, "--websocket-max-frame-size", size]
    assert int(size) > settings.WS_FRAME_MAX_BYTES > 4 * settings.IMAGE_MAX_BYTES * 4 // 3
    mine = daphne_argv(["--websocket-max-message-size=5", "playground.asgi:application"])
    assert (
        mine[:2] == ["--websocket-max-frame-size", size]
        and "--websocket-max-message-size=5" in mine
    )


async def test_a_refused_oversized_message_is_not_echoed_back(django_user_model):
    """Before: the composer came back with the whole refused text in it (a frame's
    limit is ~28 MB), the same size again on the socket; now the page keeps its own."""

    @database_sync_to_async
    def setup():
        user = django_user_model.objects.create_user("cy", password="a-long-passphrase-42")
        profile = EndpointProfile.objects.get(owner=user, is_demo=True)
        return user, conversations.conversation_create(owner=user, profile=profile, model="demo")

    user, conversation = await setup()
    comm = await connect(user, conversation)
    text = "x" * 3_000_000
    await comm.send_to(text_data=json.dumps({"action": "send", "content": text}))
    frame = await comm.receive_from(timeout=10)
    await comm.disconnect()
    assert "The message is 3,000,000 characters; the limit is 200,000." in frame
    assert len(frame) < 10_000 and "xxxxxxxx" not in frame
    # The textarea is kept as the page has it, not replaced by an empty one.
    assert 'id="composer-input" name="content" hx-preserve' in frame
    assert not await database_sync_to_async(
        Message.objects.filter(conversation=conversation).exists
    )()
