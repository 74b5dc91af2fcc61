"""Driving whole turns through the websocket consumer (as a browser tab would)."""

from __future__ import annotations

import asyncio
import html
import json
import re

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat import conversations
from chat.models import Conversation, EndpointProfile, Message
from chat.sockets.routing import websocket_urlpatterns

DELTA = re.compile(r'<span id="(t|r)-(\d+)" hx-swap-oob="(beforeend|innerHTML)">(.*?)</span>', re.S)
ws_app = URLRouter(websocket_urlpatterns)


@database_sync_to_async
def make_profile(owner, *, base_url: str, name: str = "Faulty", **fields) -> EndpointProfile:
    profile = EndpointProfile(
        owner=owner,
        name=name,
        base_url=base_url,
        default_model="demo",
        models_cache=["demo"],
        **fields,
    )
    profile.save()
    return profile


@database_sync_to_async
def make_conversation(owner, profile, model: str = "demo") -> Conversation:
    return conversations.conversation_create(owner=owner, profile=profile, model=model)


async def connect(user, conversation, app=ws_app) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(app, f"/ws/c/{conversation.pk}/")
    comm.scope["user"] = user
    connected, code = await comm.connect()
    assert connected, code
    return comm


async def send(comm: WebsocketCommunicator, text: str) -> None:
    await comm.send_to(text_data=json.dumps({"action": "send", "content": text}))


def is_final(frame: str) -> bool:
    return 'hx-swap-oob="outerHTML"' in frame and 'data-role="assistant"' in frame


async def until_done(comm: WebsocketCommunicator, timeout: float = 60) -> list[str]:
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_from(timeout=timeout)
            frames.append(frame)
            if is_final(frame):
                return frames


def streamed_text(frames: list[str]) -> str:
    text = ""
    for frame in frames:
        for kind, _, mode, body in DELTA.findall(frame):
            if kind == "t":
                body = html.unescape(body)
                text = body if mode == "innerHTML" else text + body
    return text


@database_sync_to_async
def last_answer(conversation) -> Message:
    return conversation.messages.filter(role="assistant").order_by("-turn", "-id").first()
