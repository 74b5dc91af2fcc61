"""Comparison actions: lanes, sweeps, versions, diffs, blind votes, shareable setups."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import compare, frames, owned, profiles, turns
from chat.compare.blind import position_of
from chat.compare.votes import leaderboard_rows, leaderboard_votes, rated
from chat.errors import ActionError
from chat.forms import LaneSettingsForm
from chat.models import Conversation, Lane, Message, system_prompt_problem
from chat.params import BY_NAME, ParamError
from chat.presenters import lane_form, panel_context
from chat.versions import path_of
from chat.views.htmx import refresh


def _refresh(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    """The conversation's page, reloaded (htmx) or redirected to."""
    return refresh(request, "chat:conversation", conversation_id=conversation.pk)


def _guarded(request: HttpRequest, conversation: Conversation, action) -> HttpResponse:
    try:
        action()
    except ActionError as exc:
        messages.error(request, str(exc))
    return _refresh(request, conversation)


@require_POST
def lane_add(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    return _guarded(request, conversation, lambda: compare.lane_add(conversation=conversation))


@require_POST
def lane_duplicate(request: HttpRequest, conversation_id: uuid.UUID, lane_id: int):
    lane = owned.lane(request.user, conversation_id, lane_id)
    conversation = lane.conversation
    return _guarded(
        request, conversation, lambda: compare.lane_add(conversation=conversation, source=lane)
    )


@require_POST
def lane_remove(request: HttpRequest, conversation_id: uuid.UUID, lane_id: int):
    lane = owned.lane(request.user, conversation_id, lane_id)
    return _guarded(request, lane.conversation, lambda: compare.lane_remove(lane=lane))


@require_POST
def lane_move(request: HttpRequest, conversation_id: uuid.UUID, lane_id: int, direction: str):
    lane = owned.lane(request.user, conversation_id, lane_id)
    offset = {"left": -1, "right": 1}.get(direction)
    if offset is None:
        raise Http404
    return _guarded(request, lane.conversation, lambda: compare.lane_move(lane=lane, offset=offset))


@require_POST
def lane_settings(request: HttpRequest, conversation_id: uuid.UUID, lane_id: int):
    """Endpoint, model and own system prompt of one lane, saved as they change."""
    lane = owned.lane(request.user, conversation_id, lane_id)
    form = LaneSettingsForm(request.POST, owner=request.user, prefix=f"lane{lane.pk}")
    saved = synced = False
    api_before = lane.wire_api
    own = request.POST.get("own_system_prompt")
    problem = system_prompt_problem(own) if request.POST.get("use_own_prompt") else None
    if problem:
        # Nothing saved, nothing cut: the head comes back with the text as typed and why.
        form.add_error(None, problem)
        lane.system_prompt = own
    elif lane.conversation.blind:
        # The head shows no endpoint or model in blind mode: only its own prompt is
        # edited there, and a posted endpoint or model is not taken blind.
        _own_prompt_save(request, lane)
        lane.save(update_fields=["system_prompt"])
        saved = True
    elif form.is_valid():
        before = (lane.profile_id, lane.model)
        profile_changed = form.cleaned_data["profile"] != lane.profile
        lane.profile = form.cleaned_data["profile"]
        lane.model = form.cleaned_data["model"]
        if profile_changed and lane.model not in lane.profile.model_names:
            fallback = "" if lane.profile.model_optional else lane.model
            lane.model = profiles.model_for_profile(profile=lane.profile) or fallback
        if form.add_prefix("api") in request.POST:  # absent: a head without the picker
            lane.api = form.cleaned_data["api"]
        _own_prompt_save(request, lane)
        lane.save(update_fields=["profile", "model", "system_prompt", "api"])
        saved = True
        if request.POST.get("sync_lanes") and (lane.profile_id, lane.model) != before:
            # "Same endpoint and model in every lane": only this group follows, and
            # only when it changed (editing the lane's own prompt moves no other lane).
            synced = compare.lanes_sync_model(lane=lane)
    conversation = lane.conversation
    lanes = list(conversation.lanes.select_related("profile"))
    context = {"conversation": conversation, "lane_count": len(lanes)}
    html = render_to_string(
        "chat/_lane_head.html",
        {
            **context,
            "lane": lane,
            "form": lane_form(request, lane) if saved else form,
            "saved": saved,
        },
        request=request,
    )
    # The other lanes' heads follow out of band, so every column shows the change.
    for other in lanes if synced else []:
        if other.pk != lane.pk:
            html += render_to_string(
                "chat/_lane_head.html",
                {**context, "lane": other, "form": lane_form(request, other), "oob": True},
                request=request,
            )
    if lane.wire_api != api_before and request.POST.get("panel_lane") == str(lane.pk):
        # The panel shows this lane: it now offers the other API's parameters.
        html += render_to_string(
            "chat/_params.html", {**panel_context(lane), "oob": True}, request=request
        )
    return HttpResponse(html)


def _own_prompt_save(request: HttpRequest, lane: Lane) -> None:
    own = request.POST.get("own_system_prompt")
    if own is not None:
        lane.system_prompt = own if request.POST.get("use_own_prompt") else None


@require_http_methods(["GET", "POST"])
def lane_sweep(request: HttpRequest, conversation_id: uuid.UUID, lane_id: int):
    lane = owned.lane(request.user, conversation_id, lane_id)
    context = {
        "lane": lane,
        "conversation": lane.conversation,
        "sweepable": [BY_NAME[name] for name in compare.SWEEPABLE],
        "models": lane.profile.model_names if lane.profile else [],
        "max_lanes": compare.MAX_LANES,
    }
    if request.method == "POST":
        try:
            if request.POST.get("kind") == "models" and lane.conversation.blind:
                raise ActionError("Turn Blind off to sweep over models.")
            if request.POST.get("kind") == "models":
                models = [m for m in request.POST.getlist("models") if m.strip()]
                if len(models) < 2:
                    raise ActionError("Pick at least two models.")
                compare.lanes_sweep(lane=lane, models=models)
            else:
                name = request.POST.get("param", "")
                values = compare.sweep_values(name, request.POST.get("values", ""))
                compare.lanes_sweep(lane=lane, param=name, values=values)
        except (ActionError, ParamError) as exc:
            context["error"] = str(exc)
            context["posted"] = request.POST
            return render(request, "chat/_sweep.html", context)
        return _refresh(request, lane.conversation)
    return render(request, "chat/_sweep.html", context)


@require_POST
def attempt_show(
    request: HttpRequest, conversation_id: uuid.UUID, lane_id: int, turn: int, attempt: int
):
    lane = owned.lane(request.user, conversation_id, lane_id)
    try:
        turns.attempt_show(lane=lane, turn=turn, attempt=attempt)
    except ActionError as exc:
        raise Http404(str(exc)) from None
    return HttpResponse(frames.cell(lane, turn))


@require_POST
def blind_toggle(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    conversation.blind = request.POST.get("blind") == "on"
    conversation.save(update_fields=["blind", "updated_at"])
    return _refresh(request, conversation)


@require_POST
def vote(request: HttpRequest, conversation_id: uuid.UUID, turn: int) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    verdict = request.POST.get("verdict", "")
    # The letter the turn shows (blind, shuffled per turn): never the lane's position,
    # which would tell whoever set the lanes up which answer is which.
    letter = request.POST.get("winner") or ""
    winner = position_of(conversation, turn, letter) if letter else None
    try:
        if letter and winner is None:
            raise ActionError("Pick one of the lanes.")
        compare.vote_cast(conversation=conversation, turn=turn, verdict=verdict, winner=winner)
    except (ActionError, ValueError) as exc:
        messages.error(request, str(exc))
    return _refresh(request, conversation)


@require_GET
async def leaderboard(request: HttpRequest) -> HttpResponse:
    """The ratings are computed in a thread of their own, off the thread every
    synchronous view and database call shares: seconds of resampling for a user with
    thousands of votes must not hold up anyone's page or answer."""
    user = await request.auser()
    request.user = user
    table, ballots = await sync_to_async(leaderboard_votes)(owner=user)
    fitted = await asyncio.to_thread(rated, ballots)
    rows = leaderboard_rows(table, fitted)
    return await sync_to_async(render)(request, "chat/leaderboard.html", {"rows": rows})


@require_GET
def diff(request: HttpRequest, conversation_id: uuid.UUID, turn: int) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    lanes = list(conversation.lanes.all())
    answers = {
        m.lane_id: m
        for m in Message.objects.filter(
            conversation=conversation,
            turn=turn,
            branch=path_of(conversation).branch_at(turn),
            role=Message.Role.ASSISTANT,
            hidden=False,
        ).order_by("id")
    }
    # In the order the turn shows its answers, under its letters (blind: shuffled).
    lanes = compare.turn_order(conversation, turn, lanes)
    letters = compare.turn_letters(conversation, turn, lanes)
    first, second = (lanes + lanes)[:2] if lanes else (None, None)
    try:
        a = int(request.GET.get("a", first.position if first else 0))
        b = int(request.GET.get("b", second.position if second else 1))
    except ValueError:
        raise Http404 from None
    by_position = {lane.position: lane for lane in lanes}
    if a not in by_position or b not in by_position:
        raise Http404
    left = answers.get(by_position[a].pk)
    right = answers.get(by_position[b].pk)
    return render(
        request,
        "chat/_diff.html",
        {
            "conversation": conversation,
            "turn": turn,
            "choices": [(lane.position, letters[lane.pk]) for lane in lanes],
            "a": a,
            "b": b,
            "label_a": letters[by_position[a].pk],
            "label_b": letters[by_position[b].pk],
            "ops": compare.word_diff(left.content if left else "", right.content if right else ""),
        },
    )


def _encode_setup(setup: list[dict]) -> str:
    return base64.urlsafe_b64encode(json.dumps(setup, separators=(",", ":")).encode()).decode()


@require_GET
def setup_link(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    url = request.build_absolute_uri(
        reverse("chat:setup_open") + "?setup=" + _encode_setup(compare.setup_of(conversation))
    )
    return render(request, "chat/_setup_link.html", {"url": url, "conversation": conversation})


@require_http_methods(["GET", "POST"])
def setup_open(request: HttpRequest) -> HttpResponse:
    """A new comparison with the lanes of a shared setup (no history)."""
    raw = request.GET.get("setup") or request.POST.get("setup") or ""
    try:
        setup = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        setup = None
    if request.method == "POST" and setup is not None:
        try:
            conversation = compare.conversation_from_setup(owner=request.user, setup=setup)
        except ActionError as exc:
            return render(
                request, "chat/setup_open.html", {"error": str(exc), "raw": raw}, status=400
            )
        return redirect("chat:conversation", conversation_id=conversation.pk)
    error = None if setup is not None else "This setup link is damaged."
    return render(
        request,
        "chat/setup_open.html",
        {"setup": setup if isinstance(setup, list) else None, "raw": raw, "error": error},
        status=200 if error is None else 400,
    )
