"""Business actions shared by the views and the websocket consumer.

Keyword-only, typed, named `<thing>_<action>`. Synchronous: async callers wrap them
with `database_sync_to_async`.

The actions live by responsibility in chat.profiles, chat.images, chat.turns,
chat.request_body and chat.usage; the names imported from them below are re-exported so
that `services.X` keeps working.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.errors import ActionError
from chat.images import images_clean
from chat.models import Conversation, EndpointProfile, Lane, Message, Preset
from chat.params import BY_NAME
from chat.profiles import (
    DEMO_BASE_URL,
    DEMO_MODELS,
    model_for_profile,
    profile_default,
    profile_ensure_demo,
)
from chat.request_body import (
    HISTORY_FIELDS,
    LEGACY_CALL_PREFIX,
    completion_body_build,
    draft_body_build,
    lane_history,
    message_payload,
    request_body_build,
)
from chat.turns import (
    EarlyStart,
    answer_attempt_new,
    answers_regenerate,
    attempt_next,
    attempt_show,
    lane_ready,
    quota_check,
    title_from,
    tool_results_submit,
    turn_save,
)
from chat.usage import usage_totals
from chat.versions import next_turn

# Re-exported (with the actions defined below): `services.X` works for all of them.
__all__ = [
    "ActionError",
    "images_clean",
    "DEMO_BASE_URL",
    "DEMO_MODELS",
    "model_for_profile",
    "profile_default",
    "profile_ensure_demo",
    "HISTORY_FIELDS",
    "LEGACY_CALL_PREFIX",
    "completion_body_build",
    "draft_body_build",
    "lane_history",
    "message_payload",
    "request_body_build",
    "answer_attempt_new",
    "attempt_next",
    "answers_regenerate",
    "attempt_show",
    "lane_ready",
    "next_turn",
    "quota_check",
    "title_from",
    "tool_results_submit",
    "EarlyStart",
    "turn_save",
    "usage_totals",
    "conversation_create",
    "conversation_mode_set",
    "lane_params_save",
    "preset_save",
    "preset_apply",
    "messages_mark_interrupted",
]


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


def lane_params_save(*, lane: Lane, params: dict[str, Any], mode: str | None = None) -> None:
    """`params`: the values of `mode`'s parameters (None: of every mode); a lane keeps the
    values it has for the other mode's, for when the conversation switches back."""
    if mode is not None:
        kept = {
            name: value
            for name, value in lane.params.items()
            if name in BY_NAME and mode not in BY_NAME[name].modes
        }
        params = {**kept, **params}
    if params != lane.params:
        lane.params = params
        lane.save(update_fields=["params"])


def preset_save(
    *,
    owner: AbstractBaseUser,
    name: str,
    lane: Lane,
    params: dict[str, Any],
    with_system: bool,
    with_tools: bool,
) -> tuple[Preset, bool]:
    """Save (or update, by name) a preset from a lane; returns (preset, created)."""
    conversation = lane.conversation
    return Preset.objects.update_or_create(
        owner=owner,
        name=name,
        defaults={
            "params": params,
            "system_prompt": conversation.system_prompt if with_system else "",
            # Every entry, disabled ones and mock results included, so apply restores the
            # editor as it was; tool_choice travels with them (it may name one).
            "tools": lane.effective_tools if with_tools else None,
            "tool_choice": conversation.tool_choice if with_tools else None,
        },
    )


def preset_apply(*, preset: Preset, lane: Lane, params: dict[str, Any]) -> set[str]:
    """Apply a preset to a lane; returns what changed besides the parameters
    ({"system_prompt", "tools"})."""
    conversation = lane.conversation
    lane_params_save(lane=lane, params=params, mode=conversation.mode)
    changed: set[str] = set()
    if preset.system_prompt:
        conversation.system_prompt = preset.system_prompt
        conversation.save(update_fields=["system_prompt", "updated_at"])
        changed.add("system_prompt")
    if preset.tools is not None:
        # A lane that already has its own tools, or one lane of a comparison, gets the
        # preset's tools for itself; a plain chat's tools are the conversation's.
        if lane.tools is not None or conversation.lanes.count() > 1:
            lane.tools = preset.tools
            lane.save(update_fields=["tools"])
        else:
            conversation.tools = preset.tools
        conversation.tool_choice = preset.tool_choice
        conversation.save(update_fields=["tools", "tool_choice", "updated_at"])
        changed.add("tools")
    return changed


def messages_mark_interrupted(*, conversation: Conversation) -> int:
    """Persist `interrupted` for streaming messages whose run died with its process."""
    return conversation.messages.stale_streaming().update(
        status=Message.Status.INTERRUPTED,
        error={"message": "The run stopped when its server process ended."},
    )
turn_send = turn_save  # TEMP: tests until the services façade goes
