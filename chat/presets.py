"""Presets: a lane's parameters (and, if asked, the system prompt and the tools) saved
under a name, and applied to another lane."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat.composer import lane_params_save
from chat.models import Lane, Preset


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
