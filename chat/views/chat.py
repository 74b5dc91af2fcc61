from __future__ import annotations

import logging
import uuid
from functools import partial

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chat import (
    actions,
    branching,
    compare,
    conversations,
    frames,
    history,
    owned,
    profiles,
    runs,
    usage,
)
from chat.compare import turn_rows
from chat.errors import ActionError
from chat.forms import NewConversationForm
from chat.models import Conversation, Message, system_prompt_problem
from chat.presenters import lane_form, panel_context, tools_context
from chat.versions import path_of
from chat.views.htmx import redirect_to

# The part of the side panel a conversation opens at (?open=...), from the New page.
log = logging.getLogger(__name__)

OPEN = ("params", "tools")


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """A new, not yet saved conversation: pick endpoint and model, type, send."""
    profile = profiles.profile_default(owner=request.user)
    if profile is None:
        messages.info(request, "Add an endpoint first.")
        return redirect("chat:endpoint_new")
    form = NewConversationForm(
        owner=request.user,
        initial={"profile": profile, "model": profile.default_model},
    )
    return render(
        request,
        "chat/new.html",
        {"form": form, "profile": profile, "model_names": profile.model_names},
    )


@sync_to_async
def _create_from_form(request: HttpRequest) -> tuple[NewConversationForm, Conversation | None]:
    form = NewConversationForm(request.POST, owner=request.user)
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    conversation = conversations.conversation_create(
        owner=request.user,
        profile=data["profile"],
        model=data["model"],
        system_prompt=data["system_prompt"],
        mode=data["mode"],
    )
    if data["then"]:
        # Parameters, tools or a second lane before the first message: the conversation
        # opens without sending, and what was typed waits in its composer.
        if data["then"] == "lane":
            compare.lane_add(conversation=conversation)
        if data["content"]:
            request.session[_draft_key(conversation.pk)] = data["content"]
    return form, conversation


@require_POST
async def conversation_new(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    request.user = user  # resolved once, so the sync helpers need no lazy lookup
    form, conversation = await _create_from_form(request)
    if conversation is None:
        return await sync_to_async(_render_new_with_errors)(request, form)
    then = form.cleaned_data["then"]
    if not then:
        # The run belongs to this process, not to the request: it outlives the redirect.
        send = partial(actions.send, conversation, form.cleaned_data["content"])
        try:
            await runs.start(send, early=True)
        except ActionError as exc:
            await sync_to_async(conversation.delete)()
            form.add_error("content", str(exc))
            return await sync_to_async(_render_new_with_errors)(request, form)
        except runs.NotStarted:
            log.exception("a new conversation's first answer could not start")
            await sync_to_async(messages.error)(
                request, "Your message is saved, but its answer could not start."
            )
    url = reverse("chat:conversation", args=[conversation.pk])
    if then in ("params", "tools"):
        url += f"?open={then}"
    return redirect_to(request, url)


def _draft_key(conversation_id: uuid.UUID | str) -> str:
    return f"draft:{conversation_id}"


def _render_new_with_errors(request: HttpRequest, form: NewConversationForm) -> HttpResponse:
    profile = form.cleaned_data.get("profile")
    return render(
        request,
        "chat/new.html",
        {
            "form": form,
            "profile": profile,
            "model_names": profile.model_names if profile else [],
        },
        status=400,
    )


@require_GET
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    conversations.messages_mark_interrupted(conversation=conversation)
    lanes = list(conversation.lanes.select_related("profile"))
    path = path_of(conversation)
    # Raw responses are big and only the inspector needs them; other versions wait for ‹ ›.
    history = list(
        conversation.messages.filter(path.q())
        .select_related("lane")
        .defer("raw_response", "output_items")
    )
    visible = [m for m in history if not m.hidden]
    context = panel_context(lanes[0]) if lanes else {}
    context.update(tools_context(conversation))
    # An answer whose tool calls have no results yet shows the results form.
    last_by_lane: dict[int, Message] = {}
    for message in visible:
        if message.lane_id:
            last_by_lane[message.lane_id] = message
    context["awaiting_ids"] = {
        m.pk for m in last_by_lane.values() if m.role == Message.Role.ASSISTANT and m.tool_calls
    }
    votes = {vote.turn: vote for vote in conversation.votes.all()}
    return render(
        request,
        "chat/conversation.html",
        {
            **context,
            "totals": usage.usage_totals(messages=visible),
            "conversation": conversation,
            "lanes": lanes,
            "lane_heads": [{"lane": lane, "form": lane_form(request, lane)} for lane in lanes],
            "rows": turn_rows(conversation, lanes, history, votes, path),
            "voted_turns": set(votes),
            "last_turn": max((m.turn for m in history), default=0),
            "streaming": any(m.status == Message.Status.STREAMING for m in history),
            # What was typed on the New page before opening it to set things up first.
            "text": request.session.pop(_draft_key(conversation.pk), ""),
            "open_panel": request.GET.get("open") if request.GET.get("open") in OPEN else "",
        },
    )


@require_POST
def conversation_settings(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The shared system prompt, saved as it changes; applies to the next turn."""
    conversation = owned.conversation(request.user, conversation_id)
    prompt = request.POST.get("system_prompt", "")
    problem = system_prompt_problem(prompt)
    if problem:
        # Not saved, and not cut: the box comes back with the text as typed and why.
        context = {"conversation": conversation, "error": problem, "text": prompt}
        return render(request, "chat/_system_prompt.html", context)
    conversation.system_prompt = prompt
    conversation.save(update_fields=["system_prompt", "updated_at"])
    return render(
        request, "chat/_system_prompt.html", {"conversation": conversation, "saved": True}
    )


@require_POST
def conversation_mode(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Switch chat <-> completions; the page reloads, as the composer, the panel and the
    tools all depend on the mode."""
    conversation = owned.conversation(request.user, conversation_id)
    try:
        if conversations.conversation_mode_set(
            conversation=conversation, mode=request.POST.get("mode", "")
        ):
            label = "Completions" if conversation.mode == "completion" else "Chat"
            messages.success(request, f"{label} mode: new turns use it; earlier ones stay.")
    except ActionError as exc:
        messages.error(request, str(exc))
    return redirect_to(request, "chat:conversation", conversation.pk)


@require_GET
def model_options(request: HttpRequest) -> HttpResponse:
    """The model suggestions (and default) for the endpoint picked in a form."""
    profile = owned.profile(request.user, request.GET.get("profile", ""))
    model = profiles.model_for_profile(
        profile=profile, current=request.GET.get("model", "").strip()[:200]
    )
    return render(request, "chat/_model_options.html", {"profile": profile, "model": model})


@require_POST
def conversation_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    history.conversation_remove(conversation=conversation)
    messages.success(request, "Conversation deleted.")
    return redirect_to(request, "chat:index")


def _toast(text: str) -> HttpResponse:
    return HttpResponse(render_to_string("chat/_toast.html", {"text": text}))


@require_POST
def message_branch(
    request: HttpRequest, conversation_id: uuid.UUID, message_id: int
) -> HttpResponse:
    """Branch from here: a new conversation up to this message, opened at once."""
    conversation = owned.conversation(request.user, conversation_id)
    message = owned.message_in(conversation, message_id)
    try:
        branch = branching.branch_from(conversation=conversation, message_id=message.pk)
    except ActionError as exc:
        return _toast(str(exc))
    messages.success(request, f"Branched from “{conversation}”.")
    return HttpResponseClientRedirect(reverse("chat:conversation", args=[branch.pk]))


def _versions_broadcast(conversation: Conversation, turn: int, last_turn: int, path) -> None:
    """Every tab on the conversation drops the turns it showed from `turn` down and gets
    the shown version's, through its socket (like an edit): a tab left on the old version
    would send its next turn into a version it does not show."""
    html = frames.version_shown(conversation, turn, last_turn, path)
    async_to_sync(runs.announce)(conversation.group_name, html)


@require_POST
def version_show(
    request: HttpRequest, conversation_id: uuid.UUID, turn: int, branch: int
) -> HttpResponse:
    """Show another version of an edited question: the turns from it down are replaced
    in every tab (out of band, so the page keeps its place), and the composer continues
    this one."""
    conversation = owned.conversation(request.user, conversation_id)
    try:
        last_turn, path = branching.version_show(
            conversation=conversation, turn=turn, branch=branch
        )
    except ActionError as exc:
        return _toast(str(exc))
    _versions_broadcast(conversation, turn, last_turn, path)
    return HttpResponse(status=204)


@require_POST
def message_delete(
    request: HttpRequest, conversation_id: uuid.UUID, message_id: int
) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    message = owned.message_in(conversation, message_id)
    try:
        kind, where = branching.message_delete(conversation=conversation, message_id=message.pk)
    except ActionError as exc:
        return _toast(str(exc))
    if kind == "turn":
        return HttpResponse(frames.turns_deleted(where, where))
    if kind == "version":
        _versions_broadcast(conversation, *where)
        return HttpResponse(status=204)
    lane, turn = where
    return HttpResponse(frames.cell(lane, turn))
