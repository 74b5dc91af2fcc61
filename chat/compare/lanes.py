"""Lanes of a comparison (chat.compare): adding, moving, removing, sweeping a parameter
or the model across lanes, shareable setups, and a lane's parameter chips."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max

from chat.errors import ActionError
from chat.history import sidebar_changed
from chat.models import Conversation, EndpointProfile, Lane, system_prompt_problem
from chat.params import BY_NAME, check_params, clean_value, params_for

MAX_LANES = 6
LABELS = "ABCDEF"
SWEEPABLE = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "max_tokens", "seed")


def label(position: int) -> str:
    """A lane's letter, as the comparison page shows it (A, B, ...)."""
    return LABELS[position] if 0 <= position < len(LABELS) else str(position + 1)


def _clone(lane: Lane, position: int, **changes: Any) -> Lane:
    return Lane(
        conversation_id=lane.conversation_id,
        position=position,
        profile_id=changes.get("profile_id", lane.profile_id),
        model=changes.get("model", lane.model),
        params=changes.get("params", dict(lane.params)),
        system_prompt=lane.system_prompt,
        tools=lane.tools,
        api=changes.get("api", lane.api),
    )


def lane_add(*, conversation: Conversation, source: Lane | None = None) -> Lane:
    lanes = list(conversation.lanes.all())
    if len(lanes) >= MAX_LANES:
        raise ActionError(f"A comparison has at most {MAX_LANES} lanes.")
    source = source or lanes[-1]
    lane = _clone(source, max(lane.position for lane in lanes) + 1)
    lane.save()
    return lane


def lanes_sync_model(*, lane: Lane) -> int:
    """Give every lane of the conversation this lane's endpoint and model (the "sync"
    of that setting group); parameters, prompts and tools stay each lane's own."""
    return (
        Lane.objects.filter(conversation_id=lane.conversation_id)
        .exclude(pk=lane.pk)
        .update(profile_id=lane.profile_id, model=lane.model)
    )


def lane_remove(*, lane: Lane) -> None:
    conversation = lane.conversation
    with transaction.atomic():
        if conversation.lanes.count() <= 1:
            raise ActionError("A conversation keeps at least one lane.")
        if lane.messages.live_streaming().exists():
            raise ActionError("Stop the lane's answer before removing it.")
        lane.delete()  # its answers go with it; the shared turns stay
        _renumber(conversation)


def lane_move(*, lane: Lane, offset: int) -> None:
    with transaction.atomic():
        lanes = list(lane.conversation.lanes.select_for_update().order_by("position"))
        index = next(i for i, item in enumerate(lanes) if item.pk == lane.pk)
        target = index + offset
        if not 0 <= target < len(lanes):
            return
        lanes[index], lanes[target] = lanes[target], lanes[index]
        _renumber(lane.conversation, order=lanes)


def _renumber(conversation: Conversation, order: list[Lane] | None = None) -> None:
    order = order or list(conversation.lanes.order_by("position"))
    # Two passes: positions are unique, so move everything out of the way first.
    for offset, item in enumerate(order):
        Lane.objects.filter(pk=item.pk).update(position=100 + offset)
    for offset, item in enumerate(order):
        Lane.objects.filter(pk=item.pk).update(position=offset)


def sweep_values(name: str, raw: str) -> list[Any]:
    if name not in SWEEPABLE:
        raise ActionError(f"{name} cannot be swept.")
    values = []
    for item in re.split(r"[,\s]+", raw.strip()):
        if item:
            values.append(clean_value(BY_NAME[name], item))
    if len(values) < 2:
        raise ActionError("Give at least two values, separated by commas.")
    return values


def lanes_sweep(
    *, lane: Lane, param: str | None = None, values: list[Any] | None = None,
    models: list[str] | None = None,
) -> list[Lane]:  # fmt: skip
    """Lanes that differ from `lane` only in one parameter, or only in the model: the
    lane itself takes the first value, new lanes the others."""
    conversation = lane.conversation
    variants: list[dict[str, Any]]
    if models:
        variants = [{"model": m} for m in models]
    elif param and values:
        variants = [{"params": {**lane.params, param: v}} for v in values]
    else:
        raise ActionError("Pick a parameter and values, or models.")
    existing = conversation.lanes.count()
    if existing - 1 + len(variants) > MAX_LANES:
        raise ActionError(
            f"That makes {existing - 1 + len(variants)} lanes; a comparison has at most "
            f"{MAX_LANES}."
        )
    with transaction.atomic():
        first, rest = variants[0], variants[1:]
        for key, value in first.items():
            setattr(lane, key, value)
        lane.save()
        top = conversation.lanes.aggregate(m=Max("position"))["m"]
        created = [_clone(lane, top + 1 + i, **variant) for i, variant in enumerate(rest)]
        Lane.objects.bulk_create(created)
    return [lane, *created]


def setup_of(conversation: Conversation) -> list[dict[str, Any]]:
    """What a shareable setup carries: lanes without history or secrets."""
    return [
        {
            "profile": lane.profile.name if lane.profile else "",
            "base_url": lane.profile.base_url if lane.profile else "",
            "model": lane.model,
            "params": lane.params,
            "system_prompt": lane.system_prompt,
            "api": lane.api,
        }
        for lane in conversation.lanes.select_related("profile")
    ]


def conversation_from_setup(*, owner: Any, setup: list[dict[str, Any]]) -> Conversation:
    if not isinstance(setup, list) or not 1 <= len(setup) <= MAX_LANES:
        raise ActionError(f"A setup has 1 to {MAX_LANES} lanes.")
    profiles = list(EndpointProfile.objects.filter(owner=owner))
    if not profiles:
        raise ActionError("Add an endpoint first.")
    fallback = next((p for p in profiles if p.is_demo), profiles[0])
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=owner, title="Comparison")
        sidebar_changed(owner_id=conversation.owner_id)
        for position, item in enumerate(setup):
            if not isinstance(item, dict):
                raise ActionError(f"Lane {position + 1} is not an object.")
            profile = next(
                (p for p in profiles if p.name == item.get("profile")),
                next((p for p in profiles if p.base_url == item.get("base_url")), fallback),
            )
            params = item.get("params") or {}
            if not isinstance(params, dict):
                raise ActionError(f"Lane {position + 1}: params must be an object.")
            cleaned, errors = check_params(params)
            if errors:
                raise ActionError(f"Lane {position + 1}: {next(iter(errors.values()))}")
            prompt = item.get("system_prompt")
            if problem := system_prompt_problem(prompt if isinstance(prompt, str) else None):
                raise ActionError(f"Lane {position + 1}: {problem}")
            api = item.get("api") or ""
            if api not in ("", "chat", "responses"):
                raise ActionError(f"Lane {position + 1}: api must be chat or responses.")
            Lane.objects.create(
                conversation=conversation,
                position=position,
                profile=profile,
                model=str(item.get("model") or profile.default_model)[:200],
                params=cleaned,
                system_prompt=prompt if isinstance(prompt, str) else None,
                api=api,
            )
    return conversation


def _chip_value(param: Any, value: Any) -> str:
    if param.kind == "bool":
        return "on" if value else "off"
    if param.kind == "stops":
        return f"×{len(value)}" if isinstance(value, list) else "set"
    if param.kind in ("json", "json_schema", "logit_bias", "metadata"):
        return "set"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "…"


def params_text(params: dict[str, Any]) -> str:
    """A lane's parameters in a few words ("temp 0.2 · max 256"), in the table's order."""
    return " · ".join(
        f"{p.chip} {_chip_value(p, params[p.name])}"
        for p in BY_NAME.values()
        if params.get(p.name) is not None
    )


def lane_chips(lane: Lane, lanes: list[Lane]) -> list[dict[str, Any]]:
    """A lane's parameters at a glance: each one it sets, and each one another lane sets
    that it leaves to the endpoint ("default"); those that differ between lanes marked."""
    others = [other for other in lanes if other.pk != lane.pk]
    chips = []
    for param in params_for(lane.conversation.mode, lane.wire_api):
        mine = lane.params.get(param.name)
        if mine is None and not any(o.params.get(param.name) is not None for o in others):
            continue
        chips.append(
            {
                "label": param.chip,
                "value": "default" if mine is None else _chip_value(param, mine),
                "title": f"{param.label}: {'not sent' if mine is None else mine}",
                "differs": any(o.params.get(param.name) != mine for o in others),
            }
        )
    return chips
