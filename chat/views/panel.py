"""The parameter panel of a conversation: its values per lane, saving them (to one lane
or every lane), and presets."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chat import composer, owned, presets
from chat.models import Conversation, Lane, Preset
from chat.params import BY_NAME, check_params, params_for
from chat.views.tools import tools_context


def panel_lane(request: HttpRequest, conversation_id: uuid.UUID) -> Lane:
    """The lane the panel edits: the one it names, else the first."""
    # show_lane: the panel's Lane select, asking for another lane's panel.
    wanted = (
        request.POST.get("panel_lane")
        or request.GET.get("show_lane")
        or request.GET.get("panel_lane")
        or ""
    )
    if wanted:
        # A named lane must be one of this conversation's: no falling back to another.
        return owned.lane(request.user, conversation_id, wanted)
    return owned.first_lane(request.user, conversation_id)


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


def raw_params(request: HttpRequest) -> dict[str, str]:
    return {k[6:]: v for k, v in request.POST.items() if k.startswith("param:")}


def display_value(name: str, value: Any) -> str:
    """A stored value as its panel input shows it."""
    if value is None:
        return ""
    kind = BY_NAME[name].kind
    if kind == "stops":
        return "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in value)
    if kind in ("logit_bias", "json_schema", "json"):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind == "bool":
        return "true" if value else "false"
    return str(value)


def panel_context(lane: Lane, *, values: dict[str, str] | None = None, errors=None) -> dict:
    conversation = lane.conversation
    if values is None:
        values = {
            name: display_value(name, v) for name, v in lane.params.items() if name in BY_NAME
        }
    errors = errors or {}
    rows = [
        {"param": p, "value": values.get(p.name, ""), "error": errors.get(p.name)}
        for p in params_for(conversation.mode)
    ]
    return {
        "conversation": conversation,
        "lane": lane,
        "panel_lanes": list(conversation.lanes.all()),
        "param_rows": rows,
        "presets": Preset.objects.filter(owner=conversation.owner).only(
            "id", "name", "system_prompt", "tools"
        ),
    }


@require_GET
def params_panel(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The panel for another lane of a comparison."""
    return render(request, "chat/_params.html", panel_context(panel_lane(request, conversation_id)))


@require_POST
def params_save(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Autosave of the panel: valid values are kept on the lane; errors shown inline
    (the send checks the same values again, so an invalid one is never sent)."""
    lane = panel_lane(request, conversation_id)
    raw = raw_params(request)
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
    raw = raw_params(request)
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
