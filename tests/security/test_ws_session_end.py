"""An open socket ends with its session and its user (chat/sockets/auth.py).

Before: after a log-out, a password change or a deactivation, a socket opened earlier
still saved messages and started answers."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from chat import conversations
from chat.models import Conversation, EndpointProfile, Message
from chat.sockets import auth as wsauth
from playground.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-passphrase-42"
NEW_PASSWORD = "another-long-passphrase-43"


@database_sync_to_async
def make_user(name: str = "ann"):
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    return user, conversation


@database_sync_to_async
def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


async def open_socket(client: Client, conversation: Conversation) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", cookie)]
    comm = WebsocketCommunicator(application, f"/ws/c/{conversation.pk}/", headers=headers)
    connected, code = await comm.connect()
    assert connected, code
    return comm


async def closed_with(comm: WebsocketCommunicator) -> int | None:
    """The close the socket gets next (other frames skipped), waited for, not timed."""
    while True:
        output = await comm.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output.get("code")


async def send_text(comm: WebsocketCommunicator, text: str) -> None:
    await comm.send_to(text_data=json.dumps({"action": "send", "content": text}))


@database_sync_to_async
def saved(conversation: Conversation) -> list[str]:
    return list(Message.objects.filter(conversation=conversation).values_list("content", flat=True))


async def test_log_out_closes_the_open_socket_and_a_late_send_is_not_saved():
    user, conversation = await make_user()
    client = await logged_in(user)
    comm = await open_socket(client, conversation)
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    # A frame already on its way when the socket closed: refused, not saved.
    await send_text(comm, "sent after the log-out")
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    assert await saved(conversation) == []
    await comm.disconnect()


async def test_a_socket_whose_close_event_was_lost_still_cannot_save(monkeypatch):
    user, conversation = await make_user()
    client = await logged_in(user)
    comm = await open_socket(client, conversation)
    monkeypatch.setattr(wsauth, "_send", lambda group, event: None)  # every event lost
    await database_sync_to_async(client.post)("/accounts/logout/")
    await send_text(comm, "sent on a stale socket")
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    assert await saved(conversation) == []
    await comm.disconnect()


async def test_deactivating_a_user_closes_their_sockets():
    user, conversation = await make_user()
    comm = await open_socket(await logged_in(user), conversation)
    user.is_active = False
    await database_sync_to_async(user.save)()
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    await send_text(comm, "sent by a deactivated user")
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    assert await saved(conversation) == []
    await comm.disconnect()


async def test_deleting_a_user_closes_their_sockets():
    user, conversation = await make_user()
    comm = await open_socket(await logged_in(user), conversation)
    await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).delete)()
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    await comm.disconnect()


async def test_a_password_change_closes_the_other_sessions_sockets_not_its_own():
    user, conversation = await make_user()
    here, elsewhere = await logged_in(user), await logged_in(user)
    mine = await open_socket(here, conversation)
    theirs = await open_socket(elsewhere, conversation)
    response = await database_sync_to_async(here.post)(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert await closed_with(theirs) == wsauth.CLOSE_SIGNED_OUT
    # The changing session's socket stays open and can still send.
    await send_text(mine, "sent after changing my password")
    while "sent after changing my password" not in await mine.receive_from(timeout=10):
        pass
    assert "sent after changing my password" in await saved(conversation)
    await mine.disconnect()
    await theirs.disconnect()


async def test_a_password_set_elsewhere_closes_every_session_socket():
    user, conversation = await make_user()
    comm = await open_socket(await logged_in(user), conversation)

    @database_sync_to_async
    def reset() -> None:
        fresh = get_user_model().objects.get(pk=user.pk)
        fresh.set_password(NEW_PASSWORD)
        fresh.save()

    await reset()
    assert await closed_with(comm) == wsauth.CLOSE_SIGNED_OUT
    await comm.disconnect()
