"""Sockets that end with their session or their user, and at most so many per user.

An open socket used to outlive what it was opened under: after a log-out, a password
change or a deactivation it still saved messages and started answers. Now:

- Every socket joins its session's group and its user's group on the channel layer.
  A log-out closes the session's sockets; a deactivation or deletion closes the user's;
  a password change closes the user's other sessions' sockets (the session that changed
  it stays signed in, as Django keeps it, and so do its sockets: they follow its new key).
  Group names are a hash of the session key (never the key: Redis keys are visible to
  whoever can read Redis, and a group name has a restricted alphabet) and the user's id.
- An event can be lost (a full channel, Redis restarted, a session flushed by other
  code), so before each action the page sends, the socket checks again that its session
  exists, still authenticates its user with a valid password hash, and the user is
  active: the same ``auth.get_user`` an HTTP request runs, so one session read and one
  user read (two small queries) per frame the page sends; frames are user actions, rare.
  Group events (the deltas of a running answer) are not re-checked: they carry nothing
  the session did not already show, and the close event ends them.
- Sockets per user are capped (``WS_MAX_PER_USER``) with a row per socket in the
  database, so the count holds across workers (Redis scale-out) as well as in one
  process. A worker that dies cannot delete its rows: each worker refreshes all of its
  rows once per ``HEARTBEAT`` seconds (one UPDATE per worker, not per socket), and rows
  not refreshed for ``STALE_AFTER`` seconds no longer count (and are swept).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.db import transaction
from django.utils import timezone

from chat.models import LiveSocket

# Close codes the page sees (4000-4999 are the application's).
CLOSE_SIGNED_OUT = 4401
CLOSE_TOO_MANY = 4429

HEARTBEAT = 60.0
STALE_AFTER = 3 * HEARTBEAT
# This process, as the owner of its sockets' rows.
WORKER = uuid.uuid4().hex


def session_group(session_key: str) -> str:
    return "auth-s." + hashlib.sha256(session_key.encode()).hexdigest()[:48]


def user_group(user_id: Any) -> str:
    return f"auth-u.{int(user_id)}"


def _send(group: str, event: dict[str, Any]) -> None:
    """Sent once the change is committed, so a socket that re-checks sees it."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, event)

    transaction.on_commit(send)


def session_ended(session_key: str | None) -> None:
    if session_key:
        _send(session_group(session_key), {"type": "auth.close"})


def user_ended(user_id: Any) -> None:
    _send(user_group(user_id), {"type": "auth.close"})


def user_changed(user_id: Any) -> None:
    """Each of the user's sockets checks its session again (after a password change)."""
    _send(user_group(user_id), {"type": "auth.check"})


def password_changed(old_key: str | None, new_key: str | None, user_id: Any) -> None:
    """The changing session's sockets move to its new key first (events reach each
    socket in order), then every socket of the user checks: only that session passes.
    The new key travels on the channel layer, inside the deployment, for a few ms."""
    if old_key and new_key:
        _send(session_group(old_key), {"type": "auth.rekey", "session": new_key})
    user_changed(user_id)


# --- the signals (connected in chat.apps) ----------------------------------------------
def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    session_ended(getattr(session, "session_key", None))


def on_user_pre_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if kwargs.get("raw") or instance.pk is None or (fields and set(fields) <= {"last_login"}):
        return  # every log-in saves last_login: no extra query for it
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    instance._socket_auth_before = before


def on_user_post_save(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = instance.__dict__.pop("_socket_auth_before", None)
    if created or before is None:
        return
    if before["is_active"] and not instance.is_active:
        user_ended(instance.pk)
    elif before["password"] != instance.password and not getattr(
        instance, "_socket_password_view", False
    ):
        # Changed elsewhere (admin, changepassword, reset): every session re-checks.
        user_changed(instance.pk)


def on_user_pre_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    user_ended(instance.pk)


# --- the socket count -----------------------------------------------------------------
_beats: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
_open: dict[asyncio.AbstractEventLoop, int] = {}


@database_sync_to_async
def _socket_open(user_id: Any) -> int | None:
    """This socket's row, or None when the user has WS_MAX_PER_USER live ones already.
    Inserted before counting, so two sockets opening at once on two workers cannot both
    slip under the limit (at worst both are refused)."""
    now = timezone.now()
    row = LiveSocket.objects.create(user_id=user_id, worker=WORKER, seen_at=now)
    limit = settings.WS_MAX_PER_USER
    if not limit:
        return row.pk
    LiveSocket.objects.filter(seen_at__lt=now - timedelta(seconds=STALE_AFTER)).delete()
    if LiveSocket.objects.filter(user_id=user_id, pk__lt=row.pk).count() >= limit:
        row.delete()
        return None
    return row.pk


@database_sync_to_async
def _socket_closed(row: int) -> None:
    LiveSocket.objects.filter(pk=row).delete()


@database_sync_to_async
def _beat_once() -> None:
    LiveSocket.objects.filter(worker=WORKER).update(seen_at=timezone.now())


async def _beat(loop: asyncio.AbstractEventLoop) -> None:
    while _open.get(loop):
        await asyncio.sleep(HEARTBEAT)
        await _beat_once()


def _track(delta: int) -> None:
    loop = asyncio.get_running_loop()
    _open[loop] = _open.get(loop, 0) + delta
    if _open[loop] > 0 and loop not in _beats:
        _beats[loop] = loop.create_task(_beat(loop))
    elif _open[loop] <= 0:
        _open.pop(loop, None)
        task = _beats.pop(loop, None)
        if task is not None:
            task.cancel()


# --- the consumers' side --------------------------------------------------------------
class SignedInSocket:
    """Mixed into a consumer: ``signed_in()`` in connect, ``join()`` just before accept,
    ``leave()`` in disconnect, ``still_signed_in()`` before acting on a frame."""

    scope: dict[str, Any]
    channel_name: str
    channel_layer: Any
    _socket_row: int | None = None
    _session_key: str | None = None

    def signed_in(self) -> bool:
        user = self.scope.get("user")
        return user is not None and user.is_authenticated

    async def join(self) -> bool:
        """Counted and grouped; False (the socket accepted, then closed with
        CLOSE_TOO_MANY so the page can read why) past the limit."""
        user = self.scope["user"]
        row = await _socket_open(user.pk)
        if row is None:
            await self.accept()
            await self.close(
                code=CLOSE_TOO_MANY,
                reason=f"Too many open pages: at most {settings.WS_MAX_PER_USER} sockets "
                "per user. Close some tabs.",
            )
            return False
        self._socket_row = row
        _track(+1)
        session = self.scope.get("session")
        self._session_key = getattr(session, "session_key", None)
        for group in self._auth_groups():
            await self.channel_layer.group_add(group, self.channel_name)
        return True

    async def leave(self) -> None:
        if self._socket_row is None:
            return
        row, self._socket_row = self._socket_row, None
        _track(-1)
        for group in self._auth_groups():
            await self.channel_layer.group_discard(group, self.channel_name)
        await _socket_closed(row)

    def _auth_groups(self) -> list[str]:
        groups = [user_group(self.scope["user"].pk)]
        if self._session_key:
            groups.append(session_group(self._session_key))
        return groups

    async def still_signed_in(self) -> bool:
        """The re-check (see the module's docstring); a socket that fails it is closed."""
        if await self._check():
            return True
        await self.close(code=CLOSE_SIGNED_OUT)
        return False

    @database_sync_to_async
    def _check(self) -> bool:
        user = self.scope["user"]
        if self._session_key is None:
            # Only a scope built without the session middleware (tests) has no session.
            return type(user).objects.filter(pk=user.pk, is_active=True).exists()
        engine = import_module(settings.SESSION_ENGINE)
        request = SimpleNamespace(session=engine.SessionStore(self._session_key))
        current = auth.get_user(request)
        return current.is_authenticated and current.pk == user.pk

    # --- group events ---
    async def auth_close(self, event: dict[str, Any]) -> None:
        await self.close(code=CLOSE_SIGNED_OUT)

    async def auth_check(self, event: dict[str, Any]) -> None:
        await self.still_signed_in()

    async def auth_rekey(self, event: dict[str, Any]) -> None:
        old, self._session_key = self._session_key, event["session"]
        if old:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(session_group(old), self.channel_name)
        await self.channel_layer.group_add(session_group(event["session"]), self.channel_name)
