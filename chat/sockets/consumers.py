"""The websocket adapter: auth; parse a frame, start its action (chat.runs.start), send;
forward group events.

Every browser tab on a conversation is one consumer in the conversation's group. A
(re)connecting tab first gets a snapshot of each streaming message, then only what it
lacks: each delta carries its offset, so text is never duplicated or lost whichever
worker owns the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404

from chat import actions, conversations, frames, owned, runs
from chat.actions import Started
from chat.errors import ActionError
from chat.models import Conversation, Message
from chat.sockets.auth import SignedInSocket
from chat.sockets.incoming import BIG_ID, BIG_TURN, MAX_SYNC_IDS, BadFrame, repeat_count, whole
from chat.sockets.shown import GAP, Shown
from chat.versions import path_of

log = logging.getLogger(__name__)

# A remote run that does not answer a snapshot request within this time is presumed dead.
SNAPSHOT_TIMEOUT = 3.0
# Room for the largest message plus its images as base64 data URLs (daphne's own limit,
# DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE, is higher, so a longer frame gets this answer).
MAX_FRAME_BYTES = settings.WS_FRAME_MAX_BYTES


# Group events whose handlers never touch the database: they only format and send what
# the event carries (a gap asks the run for a snapshot through the layer; the fallback
# render after SNAPSHOT_TIMEOUT is its own task, through database_sync_to_async).
# Channels' dispatch awaits close_old_connections in the database thread before every
# handler: for these that hop is pure latency, once per frame per socket, queued behind
# every other database call of the process.
DB_FREE_EVENTS = {
    kind: kind.replace(".", "_")
    for kind in ("turn.started", "run.delta", "run.toolcall", "run.snapshot", "run.done")
}


class ConversationConsumer(SignedInSocket, AsyncWebsocketConsumer):
    conversation: Conversation
    group: str

    async def dispatch(self, message: dict[str, Any]) -> None:
        name = DB_FREE_EVENTS.get(message.get("type"))
        if name is None:
            # The socket's own events (connect, receive, disconnect): the usual dispatch.
            await super().dispatch(message)
            return
        await getattr(self, name)(message)

    async def connect(self) -> None:
        if not self.signed_in():
            await self.close(code=4401)
            return
        self.conversation = await self._get_conversation(
            self.scope["user"], self.scope["url_route"]["kwargs"]["uuid"]
        )
        if self.conversation is None:
            await self.close(code=4404)
            return
        self.group = self.conversation.group_name
        self.shown = Shown()  # what this page shows of the answers streaming
        if not await self.join():  # counted, and closed with its session or user
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for message_id in await self._streaming_ids():
            await self._snapshot(message_id)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave()

    # --- from the browser -------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Whatever the frame asks, only while the session and the user are still valid.
        if not await self.still_signed_in():
            return
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self._toast("That message is too large to send.")
            return
        try:
            content = json.loads(text_data)
            if not isinstance(content, dict):
                raise ValueError
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." 50,000 deep
            await self._toast("The page sent a malformed message; reload the page.")
            return
        try:
            await self._act(content)
        except BadFrame as exc:
            await self._toast(str(exc))
        except Exception:
            # Whatever a frame does, the socket stays open and the page hears about it.
            log.exception("websocket frame failed: %r", str(content.get("action"))[:40])
            await self._toast("That failed on the server; reload the page to see what was saved.")

    async def _act(self, content: dict[str, Any]) -> None:
        action = content.get("action")
        if action == "send":
            await self._send_turn(content)
        elif action == "stop":
            await self._stop(content)
        elif action == "tool_results":
            await self._tool_results(content)
        elif action == "regenerate":
            await self._regenerate(content)
        elif action == "edit":
            await self._edit(content)
        elif action == "sync":
            await self._sync_shown(content)
        else:
            await self._toast(f"Unknown action {str(action)[:40]!r}.")

    async def _send_turn(self, content: dict[str, Any]) -> None:
        text = content.get("content")
        if not isinstance(text, str):
            await self._toast("The message must be text.")
            return
        try:
            repeat = repeat_count(content.get("repeat"))  # refused before anything is saved
        except BadFrame as exc:
            await self._composer(error=str(exc), text=text)
            return
        try:
            await runs.start(
                lambda early: actions.send(self._fresh(), text, content, early=early),
                early=True,
                repeats=repeat - 1,
            )
        except ActionError as exc:
            # The composer is left as it is: nothing the user typed is lost.
            await self._composer(error=str(exc), text=text)
            return
        except runs.NotStarted:
            log.exception("a saved turn's answers could not start")
            await self._composer()  # saved: sending it again would ask twice
            await self._toast(
                "Your message is saved, but its answers could not start: reload the page."
            )
            return
        except Exception:
            log.exception("saving a turn failed")
            await self._composer(
                error="Saving that failed on the server; your message is kept: send it again.",
                text=text,
            )
            return
        # This page's own turn frame comes after this (group events wait for the handler).
        await self._composer()

    async def _regenerate(self, content: dict[str, Any]) -> None:
        raw = content.get("lane")
        positions = None
        if raw != "all":
            lane = whole(raw, low=0, high=32767, problem="Regenerate needs a lane.")
            positions = None if lane is None else [lane]
        turn = whole(
            content.get("turn"), low=0, high=BIG_TURN, problem="Regenerate needs a turn number."
        )
        await self._start(actions.regenerate, positions=positions, turn=turn)

    async def _edit(self, content: dict[str, Any]) -> None:
        text = content.get("content")
        if not isinstance(text, str):
            await self._toast("The message must be text.")
            return
        message_id = whole(
            content.get("message"), low=1, high=BIG_ID,
            problem="That message is not part of this conversation.",
        )  # fmt: skip
        # Refused: the edit box is left open with the text as typed.
        await self._start(actions.edit, message_id=message_id, text=text)

    async def _tool_results(self, content: dict[str, Any]) -> None:
        answer_id = whole(
            content.get("message"), low=1, high=BIG_ID,
            problem="Tool results need the answer they belong to.",
        )  # fmt: skip
        if answer_id is None:
            raise BadFrame("Tool results need the answer they belong to.")
        results = {
            k[7:]: v for k, v in content.items() if k.startswith("result:") and isinstance(v, str)
        }
        await self._start(actions.tool_results, answer_id=answer_id, results=results)

    async def _start(self, action: Callable[..., Started], **arguments: Any) -> None:
        """Start an action's answers (regenerate, edit, tool results) on this socket's
        conversation as saved now; refused, a toast says why."""
        try:
            await runs.start(lambda early: action(self._fresh(), early=early, **arguments))
        except ActionError as exc:
            await self._toast(str(exc))

    async def _stop(self, content: dict[str, Any]) -> None:
        wanted = whole(
            content.get("message"), low=1, high=BIG_ID, problem="Stop needs a message id."
        )
        for message_id in await self._streaming_ids():
            if wanted is None or message_id == wanted:
                await runs.stop(message_id)

    async def _sync_shown(self, content: dict[str, Any]) -> None:
        """The page says which answers it shows as streaming (on every socket open). Any
        that finished meanwhile (before this socket opened, while it was down, or in a
        page restored from a cache) is sent in its final form; the others are streaming
        and got their snapshot on connect."""
        raw = content.get("messages")
        raw = raw if isinstance(raw, list) else [raw]
        malformed = "The page sent a malformed message; reload the page."
        shown = {
            whole(m, low=1, high=BIG_ID, problem=malformed)
            for m in raw[:MAX_SYNC_IDS]
            if m is not None and m != ""
        }
        streaming = set(await self._streaming_ids())
        for message_id in sorted(shown - streaming):
            html = await self._render_message(message_id)  # scoped to this conversation
            if html:
                await self.send(text_data=html)

    # --- from the group ---------------------------------------------------------------
    async def turn_started(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])

    async def run_delta(self, event: dict[str, Any]) -> None:
        if not self.shown.hold(event):
            await self._forward(event)

    async def run_toolcall(self, event: dict[str, Any]) -> None:
        if not self.shown.hold(event):
            await self._send(self.shown.toolcall(event))

    async def run_snapshot(self, event: dict[str, Any]) -> None:
        message_id = event["message_id"]
        held = self.shown.release(message_id)
        if held is None:
            return  # already served (a late or duplicate reply)
        await self._apply_snapshot(message_id, event)
        for frame in held:
            if frame["type"] == "run.toolcall":
                await self._send(self.shown.toolcall(frame))
            else:
                await self._forward(frame)

    async def run_done(self, event: dict[str, Any]) -> None:
        self.shown.done(event["message_id"])
        await self.send(text_data=event["html"])

    # --- helpers ----------------------------------------------------------------------
    async def _send(self, frame: str | None) -> None:
        if frame:
            await self.send(text_data=frame)

    async def _forward(self, event: dict[str, Any]) -> None:
        frame = self.shown.delta(event)
        if frame is GAP:
            # Something was missed: ask for the whole text again.
            await self._snapshot(event["message_id"])
        else:
            await self._send(frame)

    async def _apply_snapshot(self, message_id: int, snapshot: dict[str, Any]) -> None:
        for frame in self.shown.snapshot(message_id, snapshot):
            await self.send(text_data=frame)

    async def _snapshot(self, message_id: int) -> None:
        run = runs.local_run(message_id)
        if run is not None:
            await self._apply_snapshot(message_id, run.snapshot())
            return
        if self.shown.wait(message_id):
            await self._ask_snapshot(message_id)

    async def _ask_snapshot(self, message_id: int) -> None:
        """Ask the run's owner for its snapshot; check again after SNAPSHOT_TIMEOUT."""
        await runs.snapshot_request(message_id, self.channel_name)
        asyncio.get_running_loop().call_later(
            SNAPSHOT_TIMEOUT, lambda: asyncio.ensure_future(self._snapshot_timeout(message_id))
        )

    async def _snapshot_timeout(self, message_id: int) -> None:
        if not self.shown.is_waiting(message_id):
            return
        if await self._run_alive(message_id):
            # Its owner is alive (a fresh heartbeat) but did not answer: busy, or the run
            # was saved and not yet launched when we asked (its mailbox did not exist, so
            # the request was dropped). Ask again rather than drop the deltas held here.
            await self._ask_snapshot(message_id)
            return
        if self.shown.release(message_id) is None:
            return
        # No process owns this run any more: show what the last heartbeat saved.
        html = await self._render_message(message_id)
        if html:
            await self.send(text_data=html)

    async def _toast(self, text: str) -> None:
        await self.send(text_data=frames.toast(text))

    async def _composer(self, *, error: str = "", text: str = "") -> None:
        await self.send(text_data=frames.composer(self.conversation, error=error, text=text))

    # --- database ---------------------------------------------------------------------
    @database_sync_to_async
    def _get_conversation(self, user: Any, raw_uuid: str) -> Conversation | None:
        try:
            return owned.conversation(user, raw_uuid)
        except Http404:
            return None

    @database_sync_to_async
    def _run_alive(self, message_id: int) -> bool:
        message = (
            Message.objects.filter(pk=message_id)
            .only("status", "heartbeat_at", "created_at")
            .first()
        )
        return message is not None and message.display_status == Message.Status.STREAMING

    @database_sync_to_async
    def _streaming_ids(self) -> list[int]:
        return list(
            Message.objects.filter(conversation=self.conversation)
            .streaming()
            .values_list("id", flat=True)
        )

    def _fresh(self) -> Conversation:
        """This socket's conversation as saved now (database thread)."""
        self.conversation = Conversation.objects.get(pk=self.conversation.pk)
        return self.conversation

    @database_sync_to_async
    def _render_message(self, message_id: int) -> str:
        conversations.messages_mark_interrupted(conversation=self.conversation)
        message = Message.objects.filter(pk=message_id, conversation=self.conversation).first()
        if message is None:
            return ""
        # Its lane's latest with tool calls: the results form, as the page would show it.
        self.conversation.refresh_from_db(fields=["versions"])  # another tab may have switched
        latest = not Message.objects.filter(
            path_of(self.conversation).q(),
            conversation=self.conversation,
            lane_id=message.lane_id,
            pk__gt=message.pk,
        ).exists()
        awaiting = {message.pk} if message.tool_calls and latest else set()
        html = frames.message(message, awaiting_ids=awaiting)
        if message.lane_id and message.status != Message.Status.STREAMING:
            html += frames.summary(message.conversation, message.turn)
        return html
