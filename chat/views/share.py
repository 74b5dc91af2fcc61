"""Read-only share links: create, revoke, and the public page a link opens."""

from __future__ import annotations

import re
import uuid

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import history, owned
from chat.compare.blind import turn_letters
from chat.compare.lanes import label
from chat.models import Conversation, Message
from chat.versions import path_of

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What the public page reads of a message: never the request body, the raw response,
# the error detail (it may name the endpoint) or anything about the endpoint.
SHARED_FIELDS = (
    "id", "conversation_id", "lane_id", "turn", "role", "model", "mode", "content", "content_parts",
    "reasoning", "rendered", "tool_calls", "tool_call_id", "name", "status", "heartbeat_at",
    "created_at",
)  # fmt: skip


def _panel(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    token = conversation.share_token
    context = {
        "conversation": conversation,
        "share_url": request.build_absolute_uri(reverse("chat:shared", args=[token]))
        if token
        else "",
    }
    template = "chat/_share.html" if request.htmx else "chat/share.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def share(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """GET: the share panel; POST: make the link (or keep the one that exists)."""
    conversation = owned.conversation(request.user, conversation_id)
    if request.method == "POST":
        history.share_create(conversation=conversation)
    return _panel(request, conversation)


@require_POST
def share_revoke(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    history.share_revoke(conversation=conversation)
    return _panel(request, conversation)


@login_not_required
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """The transcript behind a share link, for anyone who has the link."""
    if not TOKEN.fullmatch(token):
        raise Http404  # not one of ours (token_urlsafe's alphabet), whatever it holds
    conversation = get_object_or_404(
        Conversation.objects.only(
            "id",
            "title",
            "mode",
            "system_prompt",
            "blind",
            "blind_orders",
            "share_token",
            "versions",
        ),
        share_token=token,
    )
    lanes = {
        lane.pk: {"label": label(lane.position), "model": lane.model}
        for lane in conversation.lanes.only("id", "position", "model")
    }
    shown = list(
        Message.objects.filter(path_of(conversation).q(), conversation=conversation, hidden=False)
        .only(*SHARED_FIELDS)
        .order_by("turn", "id")
    )
    if conversation.blind:
        # Each answer under its letter in its turn, as the owner's page shows it.
        lane_rows = list(conversation.lanes.only("id", "position"))
        letters = {t: turn_letters(conversation, t, lane_rows) for t in {m.turn for m in shown}}
        for m in shown:
            m.shown_letter = letters[m.turn].get(m.lane_id, "")
    response = render(
        request,
        "chat/shared.html",
        {
            "conversation": conversation,
            "lanes": lanes,
            "many": len(lanes) > 1,
            "shown": shown,
        },
    )
    # The token is the key: no caches keep the page after a revoke, no Referer carries
    # the URL to a site a link in an answer points at, no search engine lists it.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
