"""The parameter panel of a conversation: its values per lane, saving them (to one lane
or every lane), and presets."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chat import composer, owned, presets
from chat.models import Conversation, Lane
from chat.params import check_params
from chat.presenters import panel_context, panel_lane, tools_context


def _save_to(request: HttpRequest, lane: Lane, cleaned: dict[str, Any]) -> None:
    """To the panel's lane, or to every lane when "apply to all lanes" is on."""
    composer.params_save(lane=lane, params=cleaned, sync=bool(request.POST.get("sync_params")))


def chip_lanes(request: HttpRequest, conversation: Conversation) -> list[Lane]:
    """The lanes whose parameter chips follow a save: those the page says it shows.

    A lane added (or a page left stale) meanwhile has no chips on that page, and an
    out-of-band swap aimed at an absent element is an error in htmx.
    """
    shown = set(request.POST.getlist("chips_lane"))
    return [lane for lane in conversation.lanes.all() if str(lane.pk) in shown]


@require_GET
def params_panel(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The panel for another lane of a comparison."""
    return render(request, "chat/_params.html", panel_context(panel_lane(request, conversation_id)))


@require_POST
def params_save(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Autosave of the panel: valid values are kept on the lane; errors shown inline
    (the send checks the same values again, so an invalid one is never sent)."""
    lane = panel_lane(request, conversation_id)
    raw = composer.panel_values(request.POST)
    cleaned, errors = check_params(raw, mode=lane.conversation.mode)
    if not errors:
        _save_to(request, lane, cleaned)
    context = panel_context(lane, values=raw, errors=errors)
    context["saved"] = not errors
    if not errors:  # the lane heads' parameter chips follow
        context["chip_lanes"] = chip_lanes(request, lane.conversation)
    # 200 even with errors: htmx swaps only successful responses, and the errors are
    # the content here.
    return render(request, "chat/_params_status.html", context)


@require_POST
def preset_save(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    lane = panel_lane(request, conversation_id)
    name = request.POST.get("preset_name", "").strip()[:100]
    raw = composer.panel_values(request.POST)
    cleaned, errors = check_params(raw, mode=lane.conversation.mode)
    context = panel_context(lane, values=raw, errors=errors)
    if errors:
        context["preset_error"] = "Fix the parameters before saving them as a preset."
    elif not name:
        context["preset_error"] = "Give the preset a name."
    else:
        preset, created = presets.preset_save(
            owner=request.user,
            name=name,
            lane=lane,
            params=cleaned,
            with_system=bool(request.POST.get("preset_system")),
            with_tools=bool(request.POST.get("preset_tools")),
        )
        _save_to(request, lane, cleaned)
        context = panel_context(lane)
        context["preset_message"] = f"Preset “{preset.name}” {'saved' if created else 'updated'}."
        context["selected_preset"] = preset.pk
    return render(request, "chat/_params.html", context)


@require_POST
def preset_apply(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    lane = panel_lane(request, conversation_id)
    preset = owned.preset(request.user, request.POST.get("preset", ""))
    cleaned, _ = check_params(preset.params, mode=lane.conversation.mode)
    changed = presets.preset_apply(preset=preset, lane=lane, params=cleaned)
    context = panel_context(lane)
    context["preset_message"] = f"Applied “{preset.name}”."
    context["selected_preset"] = preset.pk
    context["chip_lanes"] = chip_lanes(request, lane.conversation)
    # The system prompt and the tools editor are elsewhere on the page: swap them too.
    context["oob_system"] = "system_prompt" in changed
    if "tools" in changed and lane.conversation.mode == Conversation.Mode.CHAT:
        own = lane if lane.tools is not None else None
        context.update(tools_context(lane.conversation, lane=own))
        context["oob_tools"] = True
    return render(request, "chat/_params.html", context)


@require_POST
def preset_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    lane = panel_lane(request, conversation_id)
    preset = owned.preset(request.user, request.POST.get("preset", ""))
    name = preset.name
    preset.delete()
    context = panel_context(lane)
    context["preset_message"] = f"Deleted “{name}”."
    return render(request, "chat/_params.html", context)
