"""The history sidebar, live: every open page of a user re-renders its list when one of
their conversations is created, renamed, pinned or deleted, in any tab or worker.

Each page opens a small socket (`/ws/sidebar/`, see base.html) whose consumer joins the
user's group; the actions call `history.sidebar_changed` once their transaction commits, and each
consumer sends its page the list partial out of band (rendered for that page, so the
conversation it shows stays marked).
"""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import frames, history
from chat.sockets.auth import SignedInSocket


class SidebarConsumer(SignedInSocket, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not self.signed_in():
            await self.close(code=4401)
            return
        user = self.user = self.scope["user"]
        self.group = history.sidebar_group(user.pk)
        # Only marks the page's own conversation in the list; nothing is looked up by it.
        query = self.scope.get("query_string", b"").decode("latin-1")
        self.current: uuid.UUID | None = None
        if query.startswith("c="):
            try:
                self.current = uuid.UUID(query[2:38])
            except ValueError:
                self.current = None
        if not await self.join():  # counted, and closed with its session or user
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page has nothing to say on this socket."""

    async def sidebar_changed(self, event: dict[str, Any]) -> None:
        if not await self.still_signed_in():  # the list is private: not after a log-out
            return
        await self.send(text_data=await self._render())

    @database_sync_to_async
    def _render(self) -> str:
        context = {
            **history.sidebar_page(owner=self.user, offset=0),
            "current_id": self.current,
            "offset": 0,
        }
        return frames.conversation_list(context)
