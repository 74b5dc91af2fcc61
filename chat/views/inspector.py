"""What is behind an answer: the inspector (request body and raw response), its markdown
source, the request as code (also the composer's draft), and the choice that continues
the conversation (n > 1)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chat import compare, composer, owned, request_body
from chat.codegen import export_request
from chat.compare.blind import lane_letter
from chat.models import Conversation, Lane, Message
from chat.params import check_params
from chat.presenters import panel_lane
from chat.render import render_markdown


def _owned_message(request: HttpRequest, conversation_id: uuid.UUID, message_id: int) -> Message:
    return owned.message(
        request.user,
        conversation_id,
        message_id,
        queryset=Message.objects.select_related("lane__profile", "conversation"),
        role=Message.Role.ASSISTANT,
    )


def _code_context(lane: Lane, body: dict[str, Any], mode: str, api: str = "") -> dict[str, Any]:
    profile = lane.profile
    if mode == Conversation.Mode.COMPLETION:
        path = "completions"
    else:
        path = "responses" if api == "responses" else "chat/completions"
    if profile is None:
        return {"code_error": "Pick an endpoint first."}
    code = export_request(
        base_url=profile.base_url,
        path=path,
        body=body,
        header_names=list(profile.extra_headers),
    )
    return {"code": code, "profile": profile, "demo": profile.is_demo}


def _blind_refusal(
    request: HttpRequest, title: str, message: Message | None
) -> HttpResponse | None:
    """Blind mode: the request body and the raw response name the model (and the code
    the endpoint), so they wait for the vote on that turn. 200 on purpose: htmx swaps
    only successful responses, and this explanation is what the dialog shows."""
    if message is not None:
        if not compare.identity_hidden(message.conversation, message.turn):
            return None
        who = (
            f"answer {lane_letter(message.conversation, message.turn, message.lane)}"
            if message.lane
            else "this answer"
        )
        reason = (
            f"Hidden until you vote: the request and the response name {who}'s endpoint "
            f"and model. Vote on turn {message.turn}, or turn Blind off, to see them."
        )
    else:
        reason = (
            "Blind is on: the request names each lane's model. Turn Blind off to see it as code."
        )
    return render(request, "chat/_blind_refusal.html", {"title": title, "reason": reason})


@require_GET
def message_inspect(request: HttpRequest, conversation_id: uuid.UUID, message_id: int):
    message = _owned_message(request, conversation_id, message_id)
    if refusal := _blind_refusal(request, "Inspector", message):
        return refusal
    return render(
        request,
        "chat/_inspector.html",
        {
            "message": message,
            "request_json": json.dumps(message.request_body, indent=2, ensure_ascii=False)
            if message.request_body is not None
            else "",
            "raw_lines": message.raw_response or [],
        },
    )


@require_GET
def message_source(request: HttpRequest, conversation_id: uuid.UUID, message_id: int):
    """A message as it was typed or generated (the markdown source), for its Copy button."""
    message = owned.message(
        request.user, conversation_id, message_id, queryset=Message.objects.only("content")
    )
    return HttpResponse(message.content, content_type="text/plain; charset=utf-8")


@require_GET
def message_code(request: HttpRequest, conversation_id: uuid.UUID, message_id: int):
    message = _owned_message(request, conversation_id, message_id)
    if message.request_body is None or message.lane is None:
        raise Http404
    if refusal := _blind_refusal(request, "The request behind this answer", message):
        return refusal
    context = _code_context(
        message.lane, message.request_body, message.conversation.mode, message.api
    )
    context["title"] = "The request behind this answer"
    return render(request, "chat/_code.html", context)


@require_POST
def draft_code(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The exact request the composer would send now, with the panel's values."""
    lane = panel_lane(request, conversation_id)
    if lane.conversation.blind:
        return _blind_refusal(request, "The request the composer would send", None)
    cleaned, errors = check_params(composer.panel_values(request.POST), mode=lane.conversation.mode)
    if errors:
        context = {
            "code_error": "Fix the parameters first: " + "; ".join(map(str, errors.values()))
        }
        return render(request, "chat/_code.html", context)
    lane.params = cleaned  # not saved: this is a preview
    body = request_body.draft_body_build(lane=lane, content=request.POST.get("content", ""))
    context = _code_context(lane, body, lane.conversation.mode, lane.wire_api)
    context["title"] = "The request the composer would send"
    return render(request, "chat/_code.html", context)


@require_POST
def message_choose(request: HttpRequest, conversation_id: uuid.UUID, message_id: int, index: int):
    """n > 1: make another choice the one the conversation continues with."""
    message = _owned_message(request, conversation_id, message_id)
    choices = message.choices or []
    choice = next((c for c in choices if c.get("index") == index), None)
    if choice is None or message.status == Message.Status.STREAMING:
        raise Http404
    message.chosen = index
    message.content = choice.get("content", "")
    message.finish_reason = choice.get("finish_reason", "")
    message.logprobs = choice.get("logprobs")
    message.rendered = render_markdown(message.content)
    try:
        message.save(update_fields=["chosen", "content", "finish_reason", "logprobs", "rendered"])
    except IntegrityError:  # pragma: no cover - defensive
        raise Http404 from None
    return render(request, "chat/_message.html", {"message": message})
