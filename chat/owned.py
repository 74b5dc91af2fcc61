"""The one way to look up a user's objects: one function per kind, scoped to its owner.

A miss (someone else's, a deleted one, or an id that is not one) is Http404, the same
answer as for one that never existed, so nothing tells another user's objects apart
from no objects. The socket maps Http404 to its own answer (closing with 4404).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from chat.models import Conversation, EndpointProfile, Lane, Message, Preset

_ID = re.compile(r"[0-9]{1,18}")  # a BigAutoField id: nothing int() or the database refuses


def _int_id(raw: Any) -> int:
    """An integer id as a URL converter or a form gives it; Http404 for anything else."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _ID.fullmatch(raw):
        return int(raw)
    raise Http404


def _uuid(raw: Any) -> uuid.UUID:
    """A UUID as a URL converter or a form gives it; Http404 for anything else."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise Http404 from None


def conversation(user: Any, conversation_id: Any) -> Conversation:
    return get_object_or_404(Conversation, pk=_uuid(conversation_id), owner=user)


def lane(user: Any, conversation_id: Any, lane_id: Any) -> Lane:
    """A lane of one of the user's conversations, with its conversation and endpoint."""
    return get_object_or_404(
        Lane.objects.select_related("conversation", "profile"),
        pk=_int_id(lane_id),
        conversation_id=_uuid(conversation_id),
        conversation__owner=user,
    )


def first_lane(user: Any, conversation_id: Any) -> Lane:
    """The first lane of one of the user's conversations, as `lane` loads it."""
    found = (
        Lane.objects.select_related("conversation", "profile")
        .filter(conversation_id=_uuid(conversation_id), conversation__owner=user)
        .order_by("position")
        .first()
    )
    if found is None:
        raise Http404
    return found


def lane_in(conversation: Conversation, lane_id: Any) -> Lane | None:
    """The lane of an (already owned) conversation a form names by id; None when it names
    none. A named lane must be one of this conversation's: never a fallback to another."""
    if lane_id is None or lane_id == "":
        return None
    # Through the related manager: the lane's conversation is this one, no second query.
    found = conversation.lanes.filter(pk=_int_id(lane_id)).first()
    if found is None:
        raise Http404
    return found


def message(
    user: Any,
    conversation_id: Any,
    message_id: Any,
    *,
    queryset: QuerySet[Message] | None = None,
    **filters: Any,
) -> Message:
    """A message of one of the user's conversations (`filters`: more conditions)."""
    return get_object_or_404(
        Message.objects.all() if queryset is None else queryset,
        pk=_int_id(message_id),
        conversation_id=_uuid(conversation_id),
        conversation__owner=user,
        **filters,
    )


def message_in(conversation: Conversation, message_id: Any) -> Message:
    """A message of an (already owned) conversation."""
    return get_object_or_404(Message, pk=_int_id(message_id), conversation=conversation)


def profile(user: Any, profile_id: Any) -> EndpointProfile:
    return get_object_or_404(EndpointProfile, pk=_uuid(profile_id), owner=user)


def preset(user: Any, preset_id: Any) -> Preset:
    return get_object_or_404(Preset, pk=_uuid(preset_id), owner=user)
