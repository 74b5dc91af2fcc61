"""The history sidebar (list, search, rename, pin, delete) and export / import."""

from __future__ import annotations

import json
import re
import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import exports, history, imports, owned, search
from chat.errors import ActionError
from chat.views.htmx import redirect_to

CURRENT = re.compile(r"/c/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/")


def _current_id(request: HttpRequest) -> uuid.UUID | None:
    """The conversation the page that sent this htmx request shows, to mark it active."""
    url = request.headers.get("HX-Current-URL", "")
    match = CURRENT.search(url)
    return uuid.UUID(match[1]) if match else None


def _offset(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0


def _sidebar(request: HttpRequest, query: str = "", status: int = 200) -> HttpResponse:
    """What the sidebar's list shows: search results for a query, else the history."""
    context: dict[str, object] = {"current_id": _current_id(request), "q": query}
    if query.strip():
        hits = search.conversations_search(owner=request.user, query=query)
        context.update(
            hits=hits,
            capped=len(hits) >= search.RESULT_LIMIT,
            too_short=len("".join(search.query_terms(query))) < search.MIN_QUERY_CHARS,
        )
        return render(request, "chat/_search_results.html", context, status=status)
    context.update(history.sidebar_page(owner=request.user, offset=0))
    return render(request, "chat/_conv_list.html", context, status=status)


@require_GET
def history_list(request: HttpRequest) -> HttpResponse:
    """A page of the history (the sidebar's "More" link loads the next one)."""
    offset = _offset(request.GET.get("offset"))
    page = history.sidebar_page(owner=request.user, offset=offset)
    context = {**page, "offset": offset, "current_id": _current_id(request), "q": ""}
    return render(request, "chat/_conv_list.html", context)


@require_GET
def history_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    if request.htmx:
        return _sidebar(request, query)
    hits = search.conversations_search(owner=request.user, query=query) if query else []
    return render(
        request,
        "chat/history_search.html",
        {
            "q": query,
            "hits": hits,
            "capped": len(hits) >= search.RESULT_LIMIT,
            "too_short": bool(query)
            and len("".join(search.query_terms(query))) < search.MIN_QUERY_CHARS,
        },
    )


@require_http_methods(["GET", "POST"])
def history_rename(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    context: dict[str, object] = {"c": conversation, "current_id": _current_id(request)}
    if request.method == "GET":
        template = "chat/_conv_rename.html" if request.htmx else "chat/rename.html"
        return render(request, template, context)
    if "cancel" in request.POST:
        if not request.htmx:
            return redirect("chat:conversation", conversation.pk)
        return render(request, "chat/_conv_item.html", context)
    title = request.POST.get("title", "")
    try:
        history.conversation_rename(conversation=conversation, title=title)
    except ActionError as exc:
        context.update(error=str(exc), title=title)
        template = "chat/_conv_rename.html" if request.htmx else "chat/rename.html"
        # 200 for htmx (it swaps only successful answers), 400 for a plain form post.
        return render(request, template, context, status=200 if request.htmx else 400)
    if not request.htmx:
        return redirect("chat:conversation", conversation.pk)
    response = render(request, "chat/_conv_item.html", context)
    # The page's own heading follows (app.js listens for this event).
    # ASCII JSON (\u escapes): a header must be latin-1, a title may be anything.
    response["HX-Trigger"] = json.dumps(
        {"conversationRenamed": {"id": str(conversation.pk), "title": conversation.title}}
    )
    return response


@require_POST
def history_pin(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    pinned = request.POST.get("pinned", "1") not in ("0", "false", "")
    history.conversation_pin(conversation=conversation, pinned=pinned)
    if request.htmx:
        return _sidebar(request, request.POST.get("q", ""))
    return redirect("chat:conversation", conversation.pk)


@require_POST
def history_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    shown = _current_id(request) == conversation.pk
    history.conversation_remove(conversation=conversation)
    if request.htmx and not shown:
        return _sidebar(request, request.POST.get("q", ""))
    messages.success(request, "Conversation deleted.")
    return redirect_to(request, "chat:index")


# --------------------------------------------------------------------------- export


def _attachment(body: str | bytes, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def export_json(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    body = exports.dumps(exports.conversation_export(conversation=conversation))
    return _attachment(
        body, exports.filename(conversation, "json"), "application/json; charset=utf-8"
    )


@require_GET
def export_markdown(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    body = exports.conversation_markdown(conversation=conversation)
    return _attachment(body, exports.filename(conversation, "md"), "text/markdown; charset=utf-8")


@require_GET
async def export_all(request: HttpRequest) -> StreamingHttpResponse:
    """Every conversation of the user, streamed a batch at a time."""
    user = await request.auser()
    response = StreamingHttpResponse(
        exports.owner_export_stream(owner=user), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="playground-conversations.json"'
    response["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------- import


@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {"max_mb": settings.IMPORT_MAX_BYTES / 1_048_576}
    if request.method == "GET":
        return render(request, "chat/import.html", context)
    upload = request.FILES.get("file")
    pasted = request.POST.get("text", "")
    errors: list[str] = []
    if upload is not None and upload.size > settings.IMPORT_MAX_BYTES:
        errors = [
            f"The file is {upload.size / 1_048_576:.1f} MB; the limit is {context['max_mb']:g} MB."
        ]
    elif upload is None and not pasted.strip():
        errors = ["Choose a file, or paste JSON."]
    if not errors:
        raw = upload.read() if upload is not None else pasted
        try:
            result = imports.import_data(owner=request.user, data=imports.parse(raw))
        except imports.ImportFailed as exc:
            errors = exc.errors
        else:
            count = len(result.conversations)
            messages.success(request, f"Imported {count} conversation{'s' if count != 1 else ''}.")
            for note in result.notes[:10]:
                messages.warning(request, note)
            if count == 1:
                return redirect("chat:conversation", result.conversations[0].pk)
            return redirect("chat:index")
    context.update(errors=errors, text=pasted)
    return render(request, "chat/import.html", context, status=400)
