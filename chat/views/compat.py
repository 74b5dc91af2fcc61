"""The compatibility report of an endpoint profile: start a check, poll it, apply its
suggested settings.  Every lookup is scoped to the owner (another user's profile is a 404).
"""

from __future__ import annotations

import uuid

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chat import owned
from chat.compat import apply_changes, panel_context
from chat.compat.runner import CheckBusy, start_check
from chat.models import EndpointProfile

MODEL_MAX = 200


def _panel(request: HttpRequest, profile: EndpointProfile, **extra: object) -> HttpResponse:
    return render(request, "chat/_compat.html", {**panel_context(profile), **extra})


@require_GET
def compat_panel(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """The report (or the check's progress): the page polls this while a check runs."""
    return _panel(request, owned.profile(request.user, profile_id))


@require_POST
async def compat_start(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Start a check of the chosen model (default: the profile's) in this process."""
    request.user = await request.auser()
    profile = await sync_to_async(lambda: owned.profile(request.user, profile_id))()
    model = (request.POST.get("model") or "").strip()[:MODEL_MAX]
    model = model or profile.default_model or next(iter(profile.model_names), "")
    note = ""
    try:
        await start_check(profile, model)
    except CheckBusy:
        note = "A check of this endpoint is already running."
    if not request.htmx:
        if note:
            await sync_to_async(messages.info)(request, note)
        return redirect("chat:endpoint_edit", profile_id=profile.pk)
    await profile.arefresh_from_db(fields=["capabilities"])
    return await sync_to_async(_panel)(request, profile, note=note)


@require_POST
def compat_apply(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Apply the settings the last report suggests (the ones the page showed)."""
    profile = owned.profile(request.user, profile_id)
    context = panel_context(profile)
    shown = request.POST.get("checked_at", "")
    if context["state"] != "done" or shown != context.get("checked_at_raw"):
        messages.error(request, "The report changed since it was shown: review it again.")
        return redirect("chat:endpoint_edit", profile_id=profile.pk)
    changes = context["changes"]
    if not changes:
        messages.info(request, "The settings already match the report.")
        return redirect("chat:endpoint_edit", profile_id=profile.pk)
    profile.quirks = apply_changes(profile.quirks or {}, changes)
    profile.save(update_fields=["quirks", "updated_at"])
    done = "; ".join(f"{c['label']}: {c['old_shown']} → {c['new_shown']}" for c in changes)
    messages.success(request, f"Applied the suggested settings. {done}")
    return redirect("chat:endpoint_edit", profile_id=profile.pk)
