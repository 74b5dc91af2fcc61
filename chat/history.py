"""Business actions on a user's conversation history: list, rename, pin, delete, share.

Keyword-only, typed, named `<thing>_<action>` like chat/turns.py. Callers pass objects
already scoped to their owner (a foreign id is a 404 before it gets here).
"""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import date_format

from chat.errors import ActionError
from chat.models import Conversation

log = logging.getLogger(__name__)

SIDEBAR_PAGE = 200
TITLE_MAX = 200


def sidebar_group(owner_id: Any) -> str:
    return f"sidebar.{owner_id}"


def sidebar_changed(*, owner_id: Any) -> None:
    """Tell every open page of this user to refresh its history list, after the commit
    (a rolled-back change tells nobody). Call from synchronous code."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(sidebar_group(owner_id), {"type": "sidebar.changed"})
        except Exception:  # a live sidebar is a nicety: never fail the action for it
            log.warning("could not notify the sidebar of user %s", owner_id, exc_info=True)

    transaction.on_commit(send)


def sidebar_conversations(*, owner: AbstractBaseUser) -> QuerySet[Conversation]:
    """The sidebar's order: pinned first, then the most recently active; only those with
    a message (``ConversationQuerySet.listed``)."""
    return (
        Conversation.objects.filter(owner=owner)
        .listed()
        .order_by("-pinned", "-updated_at")
        .only("id", "title", "pinned", "updated_at", "share_token")
    )


def date_group(when: datetime, today: date) -> str:
    """The heading a conversation last active at ``when`` goes under, as Open WebUI and
    ChatGPT group their histories: Today, Yesterday, Previous 7 days, Previous 30 days,
    then by month ("March 2026"). Days are the server's (settings.TIME_ZONE)."""
    day = timezone.localtime(when).date()
    age = (today - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age <= 7:
        return "Previous 7 days"
    if age <= 30:
        return "Previous 30 days"
    return date_format(day, "F Y")


def sidebar_page(*, owner: AbstractBaseUser, offset: int = 0) -> dict[str, Any]:
    """One page of the sidebar and where the next one starts (None at the end). Each
    conversation has its ``group`` (Pinned, or its ``date_group``) and ``group_starts``
    when it is the first of its group, counting the page before (a page loaded by "Older
    conversations…" does not repeat the heading it continues)."""
    offset = max(0, offset)
    start = max(0, offset - 1)
    rows = list(sidebar_conversations(owner=owner)[start : offset + SIDEBAR_PAGE + 1])
    today = timezone.localdate()
    previous = None
    for row in rows:
        row.group = "Pinned" if row.pinned else date_group(row.updated_at, today)
        row.group_starts = row.group != previous
        previous = row.group
    rows = rows[offset - start :]
    more = len(rows) > SIDEBAR_PAGE
    return {
        "conversations": rows[:SIDEBAR_PAGE],
        "next_offset": offset + SIDEBAR_PAGE if more else None,
    }


def conversation_rename(*, conversation: Conversation, title: str) -> None:
    title = " ".join(title.replace("\x00", "\ufffd").split())
    if not title:
        raise ActionError("A title cannot be empty.")
    if len(title) > TITLE_MAX:
        raise ActionError(f"At most {TITLE_MAX} characters.")
    # Renaming is not activity: the conversation keeps its place in the list.
    Conversation.objects.filter(pk=conversation.pk).update(title=title)
    conversation.title = title
    sidebar_changed(owner_id=conversation.owner_id)


def conversation_pin(*, conversation: Conversation, pinned: bool) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(pinned=pinned)
    conversation.pinned = pinned
    sidebar_changed(owner_id=conversation.owner_id)


def conversation_remove(*, conversation: Conversation) -> None:
    conversation.delete()
    sidebar_changed(owner_id=conversation.owner_id)


def share_create(*, conversation: Conversation) -> str:
    """The conversation's read-only link token: the current one, or a new one."""
    if conversation.share_token:
        return conversation.share_token
    conversation.share_token = secrets.token_urlsafe(24)
    conversation.shared_at = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        share_token=conversation.share_token, shared_at=conversation.shared_at
    )
    return conversation.share_token


def share_revoke(*, conversation: Conversation) -> None:
    """The link stops working at once; sharing again makes a new, different token."""
    conversation.share_token = None
    conversation.shared_at = None
    Conversation.objects.filter(pk=conversation.pk).update(share_token=None, shared_at=None)
