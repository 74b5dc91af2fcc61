"""Writing validated plans to the database (chat.imports), all in one transaction: a file
imports whole or not at all. HTML is made here from the text, never read from the file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils.dateparse import parse_datetime

from chat import history
from chat.imports.checks import ImportResult, Plan
from chat.models import Conversation, EndpointProfile, Lane, Message, Vote
from chat.profiles import profile_default
from chat.render import render_markdown


class _Profiles:
    """An export names an endpoint by name and base URL: find the importer's own."""

    def __init__(self, owner: AbstractBaseUser) -> None:
        self.owner = owner
        self.all = list(EndpointProfile.objects.filter(owner=owner))
        self._default: EndpointProfile | None = None

    def find(self, ref: dict[str, str] | None) -> EndpointProfile | None:
        if not ref:
            return None
        exact = [p for p in self.all if p.name == ref["name"] and p.base_url == ref["base_url"]]
        same_url = [p for p in self.all if p.base_url.rstrip("/") == ref["base_url"].rstrip("/")]
        return (exact or same_url or [None])[0]

    def default(self) -> EndpointProfile | None:
        if self._default is None:
            self._default = profile_default(owner=self.owner)
        return self._default


def _rendered(mode: str, message: dict[str, Any]) -> tuple[str, Any]:
    """HTML made here from the text (never read from the file), and choices to match."""
    # Whatever the file says a choice's HTML is goes; chat mode renders it from the text.
    choices = [
        {k: v for k, v in c.items() if k != "html"} for c in message.get("choices") or []
    ] or message.get("choices")
    if message["role"] != "assistant" or mode != Conversation.Mode.CHAT:
        return "", choices
    if choices:
        choices = [{**c, "html": str(render_markdown(c["content"]))} for c in choices]
    content = message.get("content", "")
    return (str(render_markdown(content)) if content else ""), choices


# Message fields copied from the file as they are (when present and not null).
_MESSAGE_FIELDS = (
    "turn", "role", "model", "content", "content_parts", "reasoning",
    "tool_calls", "chosen", "logprobs", "raw_response", "tool_call_id", "name",
    "finish_reason", "usage", "metrics", "request_body", "error", "attempt",
    "hidden", "branch", "api", "response_id", "output_items",
)  # fmt: skip


def write(owner: AbstractBaseUser, plans: list[Plan]) -> ImportResult:
    result = ImportResult()
    profiles = _Profiles(owner)
    with transaction.atomic():
        for plan in plans:
            result.conversations.append(_write_plan(owner, plan, profiles, result.notes))
        if result.conversations:
            history.sidebar_changed(owner_id=owner.pk)
    return result


def _write_plan(
    owner: AbstractBaseUser, plan: Plan, profiles: _Profiles, notes: list[str]
) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, **plan.fields)
    lanes = _write_lanes(conversation, plan, profiles, notes)
    _write_messages(conversation, plan, lanes)
    _write_votes(owner, conversation, plan.votes)
    stamps = {k: v for k, v in (("created_at", plan.created_at),
                                ("updated_at", plan.updated_at)) if v}  # fmt: skip
    if stamps:
        # Keeps its place in the history (auto_now would make it the newest).
        Conversation.objects.filter(pk=conversation.pk).update(**stamps)
    if plan.default_profile and not lanes[0].profile:
        notes.append(f"“{conversation}”: add an endpoint to continue it.")
    return conversation


def _write_lanes(
    conversation: Conversation, plan: Plan, profiles: _Profiles, notes: list[str]
) -> dict[int, Lane]:
    lanes: dict[int, Lane] = {}
    for spec in plan.lanes:
        profile = profiles.default() if plan.default_profile else profiles.find(spec["profile"])
        model = spec.get("model") or (profile.default_model if profile else "")
        lanes[spec["position"]] = Lane.objects.create(
            conversation=conversation,
            position=spec["position"],
            profile=profile,
            model=model,
            params=spec.get("params") or {},
            system_prompt=spec.get("system_prompt"),
            tools=spec.get("tools"),
            api=spec.get("api") or "",
        )
        if spec.get("profile") and profile is None:
            notes.append(
                f"“{conversation}”: no endpoint of yours is called "
                f"“{spec['profile']['name']}” at {spec['profile']['base_url']}; "
                "pick one before sending."
            )
    return lanes


def _write_messages(conversation: Conversation, plan: Plan, lanes: dict[int, Lane]) -> None:
    rows = []
    for spec in plan.messages:
        rendered, choices = _rendered(plan.fields.get("mode", "chat"), spec)
        status = spec.get("status", Message.Status.COMPLETE)
        if status == Message.Status.STREAMING:
            status = Message.Status.INTERRUPTED  # its run is not coming back
        row = Message(
            conversation=conversation,
            lane=lanes.get(spec["lane"]) if spec.get("lane") is not None else None,
            rendered=rendered,
            choices=choices,
            status=status,
        )
        for name in _MESSAGE_FIELDS:
            if name in spec and spec[name] is not None:
                setattr(row, name, spec[name])
        rows.append(row)
    created = Message.objects.bulk_create(rows, batch_size=500)
    _restore_times(created, [spec.get("created_at") for spec in plan.messages])


def _write_votes(
    owner: AbstractBaseUser, conversation: Conversation, votes: list[dict[str, Any]]
) -> None:
    for vote in votes:
        made = Vote.objects.create(
            owner=owner,
            conversation=conversation,
            turn=vote["turn"],
            verdict=vote["verdict"],
            winner_position=vote.get("winner_position"),
            lanes=vote.get("lanes", []),
        )
        when = parse_datetime(vote["created_at"]) if vote.get("created_at") else None
        if when:
            Vote.objects.filter(pk=made.pk).update(created_at=when)


def _restore_times(rows: list[Message], times: list[datetime | None]) -> None:
    pairs = [(row.pk, when) for row, when in zip(rows, times, strict=True) if when and row.pk]
    for start in range(0, len(pairs), 200):
        chunk = pairs[start : start + 200]
        Message.objects.filter(pk__in=[pk for pk, _ in chunk]).update(
            created_at=Case(
                *[When(pk=pk, then=Value(when)) for pk, when in chunk],
                output_field=DateTimeField(),
            )
        )
