"""The history sidebar, live: a change in one tab re-renders the list in the user's other
open pages (and nobody else's), over the sidebar socket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from chat import conversations, history, turns
from chat.models import Conversation, EndpointProfile
from chat.sockets.routing import websocket_urlpatterns
from playground.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


async def sidebar(user, query: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(app, f"/ws/sidebar/{query}")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


@database_sync_to_async
def new_conversation(user, text: str) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    turns.turn_save(conversation=conversation, content=text)
    return conversation


async def test_the_list_follows_creation_rename_pin_and_delete(owner, outsider):
    mine = await sidebar(owner)
    theirs = await sidebar(outsider)
    conversation = await new_conversation(owner, "A brand new chat")
    frame = await mine.receive_from(timeout=60)
    assert frame.startswith('<nav id="conv-list" hx-swap-oob="innerHTML">')
    assert "A brand new chat" in frame

    await database_sync_to_async(history.conversation_rename)(
        conversation=conversation, title="Renamed elsewhere"
    )
    frame = await mine.receive_from(timeout=60)
    assert "Renamed elsewhere" in frame and "A brand new chat" not in frame

    await database_sync_to_async(history.conversation_pin)(conversation=conversation, pinned=True)
    assert 'title="Pinned"' in await mine.receive_from(timeout=60)

    await database_sync_to_async(history.conversation_remove)(conversation=conversation)
    frame = await mine.receive_from(timeout=60)
    assert "Renamed elsewhere" not in frame and "No conversations yet." in frame
    # another user's pages hear nothing of it
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


async def test_a_page_keeps_its_conversation_marked(owner):
    conversation = await new_conversation(owner, "Shown here")
    comm = await sidebar(owner, f"?c={conversation.pk}")
    await new_conversation(owner, "Made in another tab")
    frame = await comm.receive_from(timeout=60)
    assert "Made in another tab" in frame
    assert frame.count('aria-current="page"') == 1
    marked = frame.split('aria-current="page"')[0].rsplit("<a ", 1)[1]
    assert str(conversation.pk) in marked
    await comm.disconnect()
    # a malformed mark is ignored, not an error
    comm = await sidebar(owner, "?c=not-a-uuid")
    await database_sync_to_async(history.conversation_pin)(conversation=conversation, pinned=True)
    assert 'aria-current="page"' not in await comm.receive_from(timeout=60)
    await comm.disconnect()


async def test_an_http_rename_and_delete_reach_other_pages(owner, owner_client):
    conversation = await new_conversation(owner, "Over HTTP")
    comm = await sidebar(owner)
    url = reverse("chat:history_rename", args=[conversation.pk])
    await database_sync_to_async(owner_client.post)(url, {"title": "HTTP title"})
    assert "HTTP title" in await comm.receive_from(timeout=60)
    url = reverse("chat:conversation_delete", args=[conversation.pk])
    await database_sync_to_async(owner_client.post)(url)
    assert "HTTP title" not in await comm.receive_from(timeout=60)
    await comm.disconnect()


async def test_anonymous_and_foreign_origin_sockets_are_refused():
    comm = WebsocketCommunicator(app, "/ws/sidebar/")
    comm.scope["user"] = AnonymousUser()
    connected, code = await comm.connect()
    assert not connected and code == 4401
    comm = WebsocketCommunicator(
        application,
        "/ws/sidebar/",
        headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()
