from __future__ import annotations

import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import owned
from chat.forms import EndpointProfileForm
from chat.models import EndpointProfile
from chat.upstream import UpstreamFailure, chat_once, list_models


@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    profiles = EndpointProfile.objects.filter(owner=request.user)
    return render(request, "chat/endpoints.html", {"profiles": profiles})


def _endpoint_form(request: HttpRequest, profile: EndpointProfile | None) -> HttpResponse:
    """The endpoint form: a new one (profile None) or one of the user's."""
    form = EndpointProfileForm(request.POST or None, instance=profile, owner=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        done = "saved." if profile else "added. Fetch its models next."
        messages.success(request, f"Endpoint “{saved.name}” {done}")
        return redirect("chat:endpoint_edit", profile_id=saved.pk)
    return render(request, "chat/endpoint_form.html", {"form": form, "profile": profile})


@require_http_methods(["GET", "POST"])
def endpoint_new(request: HttpRequest) -> HttpResponse:
    return _endpoint_form(request, None)


@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    return _endpoint_form(request, owned.profile(request.user, profile_id))


@require_http_methods(["GET", "POST"])
def endpoint_delete(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    profile = owned.profile(request.user, profile_id)
    if request.method == "POST":
        name = profile.name
        profile.delete()
        messages.success(request, f"Endpoint “{name}” deleted.")
        return redirect("chat:endpoints")
    return render(
        request, "chat/endpoint_delete.html", {"profile": profile, "lanes": profile.lanes.count()}
    )


def _failure(step: str, exc: UpstreamFailure, started: float) -> dict[str, Any]:
    return {
        "step": step,
        "ok": False,
        "ms": round((time.monotonic() - started) * 1000),
        "error": exc.error,
    }


async def _aowned_profile(request: HttpRequest, profile_id: uuid.UUID) -> EndpointProfile:
    request.user = await request.auser()
    return await sync_to_async(owned.profile)(request.user, profile_id)


@require_POST
async def endpoint_models(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """GET {base}/models and keep the list on the profile."""
    profile = await _aowned_profile(request, profile_id)
    started = time.monotonic()
    try:
        names = await list_models(profile.endpoint())
    except UpstreamFailure as exc:
        context = {"profile": profile, "result": _failure("Fetch models", exc, started)}
        return await sync_to_async(render)(request, "chat/_models_result.html", context)
    profile.models_cache = names
    profile.models_fetched_at = timezone.now()
    if not profile.default_model and names:
        profile.default_model = names[0]
    await profile.asave(update_fields=["models_cache", "models_fetched_at", "default_model"])
    result = {"step": "Fetch models", "ok": True, "ms": round((time.monotonic() - started) * 1000)}
    context = {"profile": profile, "result": result, "names": names}
    return await sync_to_async(render)(request, "chat/_models_result.html", context)


@require_POST
async def endpoint_test(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """List the models, then ask the default model for one tiny answer."""
    profile = await _aowned_profile(request, profile_id)
    endpoint = profile.endpoint()
    steps: list[dict[str, Any]] = []
    started = time.monotonic()
    names: list[str] = []
    try:
        names = await list_models(endpoint)
        steps.append(
            {
                "step": "List models",
                "ok": True,
                "ms": round((time.monotonic() - started) * 1000),
                "detail": f"{len(names)} model{'s' if len(names) != 1 else ''}",
            }
        )
    except UpstreamFailure as exc:
        steps.append(_failure("List models", exc, started))
    model = profile.default_model or (names[0] if names else "")
    if model or profile.model_optional:
        started = time.monotonic()
        body = {
            **({"model": model} if model else {}),  # none: the endpoint's default
            "messages": [{"role": "user", "content": "Reply with the single word: OK"}],
            "max_tokens": 8,
        }
        model = model or "the endpoint's default model"
        try:
            answer = await chat_once(endpoint, body)
            text = ""
            choices = answer.get("choices") or []
            if choices and isinstance(choices[0], dict):
                text = str((choices[0].get("message") or {}).get("content") or "")
            steps.append(
                {
                    "step": f"Chat with {model}",
                    "ok": True,
                    "ms": round((time.monotonic() - started) * 1000),
                    "detail": text[:200] or "(empty answer)",
                }
            )
        except UpstreamFailure as exc:
            steps.append(_failure(f"Chat with {model}", exc, started))
    else:
        steps.append(
            {"step": "Chat", "ok": None, "detail": "No model to try: set a default model."}
        )
    context = {"profile": profile, "steps": steps}
    return await sync_to_async(render)(request, "chat/_endpoint_test.html", context)


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    EndpointProfile.objects.exists()  # the database answers
    return JsonResponse({"ok": True})
