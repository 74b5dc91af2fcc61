"""Conversations and their lanes (one per model/settings compared)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from chat.models.profile import EndpointProfile

# The longest system prompt (shared or a lane's own) accepted on any path: the New page,
# the settings box, a lane's own prompt, an import, a setup link. One message for all.
SYSTEM_PROMPT_MAX_CHARS = 100_000


def system_prompt_problem(text: str | None) -> str | None:
    """Why a system prompt cannot be saved (too long), or None."""
    if text is not None and len(text) > SYSTEM_PROMPT_MAX_CHARS:
        return (
            f"The system prompt is {len(text):,} characters; the limit is "
            f"{SYSTEM_PROMPT_MAX_CHARS:,}. Nothing was saved: shorten it and try again."
        )
    return None


class ConversationQuerySet(models.QuerySet):
    def listed(self) -> ConversationQuerySet:
        """The conversations a history shows (the sidebar, its search, Export all): those
        with at least one message. One opened from the New page only to set parameters,
        tools or lanes first is listed once its first message is sent; if it never is,
        it was only looked at, and no history shows an empty "Untitled" for it."""
        messages = self.model._meta.get_field("messages").related_model.objects
        return self.filter(models.Exists(messages.filter(conversation=models.OuterRef("pk"))))


class Conversation(models.Model):
    class Mode(models.TextChoices):
        CHAT = "chat"
        COMPLETION = "completion"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True, default="")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.CHAT)
    system_prompt = models.TextField(blank=True, default="")
    tools = models.JSONField(default=list, blank=True)
    tool_choice = models.JSONField(null=True, blank=True)
    pinned = models.BooleanField(default=False)
    # Comparison: lane identities hidden (A, B, ...) until the user votes.
    blind = models.BooleanField(default=False)
    # Blind: the order each turn shows its answers in, {turn: [lane pk, ...]}
    # (chat/compare/blind.py: shuffled, seeded, stored).
    blind_orders = models.JSONField(default=dict, blank=True)
    # Read-only share link: an unguessable token, revocable (None = not shared).
    share_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    # Edited questions: the tree of branches and the version shown of each (chat/versions.py).
    versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or "Untitled"

    @property
    def group_name(self) -> str:
        return f"conv.{self.id.hex}"


class Lane(models.Model):
    """A column of a conversation. A plain chat has one; a comparison has 2-6."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="lanes")
    position = models.PositiveSmallIntegerField(default=0)
    profile = models.ForeignKey(
        EndpointProfile, on_delete=models.SET_NULL, null=True, blank=True, related_name="lanes"
    )
    model = models.CharField(max_length=200, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    # None = use the conversation's ("" is a deliberate empty prompt, so null is meaningful).
    system_prompt = models.TextField(null=True, blank=True)  # noqa: DJ001
    tools = models.JSONField(null=True, blank=True)
    # The wire API this lane speaks in chat mode; "" = its endpoint's default
    # (quirk default_api). ``wire_api`` reads it.
    api = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "position"], name="unique_lane_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} lane {self.position}"

    @property
    def effective_system_prompt(self) -> str:
        """The system prompt this lane sends: its own if it has one (even ""), else the
        conversation's."""
        return (
            self.system_prompt
            if self.system_prompt is not None
            else self.conversation.system_prompt
        )

    @property
    def wire_api(self) -> str:
        """chat | responses | completion: the API this lane's next answer is asked on."""
        if self.conversation.mode == Conversation.Mode.COMPLETION:
            return "completion"
        if self.api in ("chat", "responses"):
            api = self.api
        else:
            api = self.profile.quirk("default_api") if self.profile else "chat"
        if api == "responses" and self.profile and not self.profile.quirk("responses"):
            return "chat"  # the endpoint says it does not serve it
        return api

    @property
    def api_path(self) -> str:
        """The path the answer is asked on, below the endpoint's base URL."""
        return {"completion": "completions", "responses": "responses"}.get(
            self.wire_api, "chat/completions"
        )

    @property
    def effective_tools(self) -> list[dict[str, Any]]:
        """The tools editor's entries this lane uses: its own if it has them, else the
        conversation's."""
        return self.tools if self.tools is not None else self.conversation.tools
