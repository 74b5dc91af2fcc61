"""Conversations: creating one (with its first lane), switching its mode, and saving
answers whose run died with its process as interrupted.

Keyword-only, typed, named `<thing>_<action>`. Synchronous: async callers wrap them
with `database_sync_to_async`.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.errors import ActionError
from chat.models import Conversation, EndpointProfile, Lane, Message


def conversation_create(
    *,
    owner: AbstractBaseUser,
    profile: EndpointProfile | None,
    model: str,
    system_prompt: str = "",
    mode: str = Conversation.Mode.CHAT,
) -> Conversation:
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner, system_prompt=system_prompt, mode=mode
        )
        Lane.objects.create(conversation=conversation, position=0, profile=profile, model=model)
    return conversation


def conversation_mode_set(*, conversation: Conversation, mode: str) -> bool:
    """Switch chat <-> completions: new turns use the new mode; every message made so far
    keeps the mode it was made in (its request, and how it is shown). Returns whether the
    mode changed."""
    if mode not in Conversation.Mode.values:
        raise ActionError("Pick Chat or Completions.")
    if mode == conversation.mode:
        return False
    with transaction.atomic():
        conversation.messages.filter(mode="").update(mode=conversation.mode)
        conversation.mode = mode
        conversation.save(update_fields=["mode", "updated_at"])
    return True


def messages_mark_interrupted(*, conversation: Conversation) -> int:
    """Persist `interrupted` for streaming messages whose run died with its process."""
    return conversation.messages.stale_streaming().update(
        status=Message.Status.INTERRUPTED,
        error={"message": "The run stopped when its server process ended."},
    )
