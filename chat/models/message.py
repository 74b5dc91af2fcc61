"""Messages: questions, answers (streaming, then saved), tool results."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.models.conversation import Conversation, Lane


class MessageQuerySet(models.QuerySet):
    """The one answer to "is an answer still streaming?": a message marked streaming whose
    run is alive (its heartbeat, or its creation before the first one, is recent). One
    marked streaming with a stale heartbeat lost its run with its process: it is shown,
    and saved by `messages_mark_interrupted`, as interrupted."""

    def streaming(self) -> MessageQuerySet:
        return self.filter(status=Message.Status.STREAMING)

    def _cutoff(self) -> Any:
        return timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER)

    def live_streaming(self) -> MessageQuerySet:
        return self.filter(self.live_q())

    def live_q(self) -> models.Q:
        """``live_streaming`` as a condition (for an aggregate's filter)."""
        cutoff = self._cutoff()
        return models.Q(status=Message.Status.STREAMING) & (
            models.Q(heartbeat_at__gte=cutoff)
            | models.Q(heartbeat_at__isnull=True, created_at__gte=cutoff)
            | models.Q(heartbeat_at__isnull=True, created_at__isnull=True)
        )

    def stale_streaming(self) -> MessageQuerySet:
        cutoff = self._cutoff()
        return self.streaming().filter(
            models.Q(heartbeat_at__lt=cutoff)
            | models.Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
        )


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"

    class Status(models.TextChoices):
        COMPLETE = "complete"
        STREAMING = "streaming"
        STOPPED = "stopped"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Null for a user turn shared by every lane.
    lane = models.ForeignKey(
        Lane, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    turn = models.PositiveIntegerField()
    role = models.CharField(max_length=20, choices=Role.choices)
    # The model that answered (the lane's may change later).
    model = models.CharField(max_length=200, blank=True, default="")
    # The conversation's mode when this message was made, set when the mode is switched
    # (blank: the conversation's current mode, which every message has until a switch).
    mode = models.CharField(max_length=20, blank=True, default="")
    content = models.TextField(blank=True, default="")
    content_parts = models.JSONField(null=True, blank=True)
    reasoning = models.TextField(blank=True, default="")
    tool_calls = models.JSONField(null=True, blank=True)
    # One verdict per call on its arguments ({"state": ok|error|unchecked, "error"}),
    # found once when the answer was saved (chat.toolschema); None: saved before that.
    tool_verdicts = models.JSONField(null=True, blank=True)
    # n > 1: every choice as [{"index", "content", "finish_reason", "logprobs"}]; `content`
    # above holds the one that continues the conversation (`chosen`).
    choices = models.JSONField(null=True, blank=True)
    chosen = models.PositiveSmallIntegerField(default=0)
    logprobs = models.JSONField(null=True, blank=True)
    # What the endpoint sent, as received (SSE data lines or the JSON body), bounded.
    raw_response = models.JSONField(null=True, blank=True)
    tool_call_id = models.CharField(max_length=200, blank=True, default="")
    # The function's name on a tool result (legacy function-calling servers need it).
    name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETE)
    finish_reason = models.CharField(max_length=50, blank=True, default="")
    usage = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    request_body = models.JSONField(null=True, blank=True)
    # The wire API an answer was asked on ("" for answers from before there was a choice:
    # chat, or completion in completion mode), and, for the Responses API, the response's
    # id and output items as the server finished them (reasoning items included).
    api = models.CharField(max_length=20, blank=True, default="")
    # Not bounded: a gateway may pack its routing into the id (LiteLLM's are ~700 chars).
    response_id = models.TextField(blank=True, default="")
    output_items = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    rendered = models.TextField(blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Regenerate keeps earlier answers as alternatives: each try of a lane's answer to a
    # turn is an attempt; only the shown attempt's messages are in the lane's context.
    attempt = models.PositiveSmallIntegerField(default=0)
    hidden = models.BooleanField(default=False)
    # Which version of the conversation (chat/versions.py) holds it; 0 = the original.
    branch = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["turn", "id"]
        indexes = [
            models.Index(fields=["conversation", "turn"]),
            # The per-user answer rate (turns.quota_check) reads the last minute.
            models.Index(fields=["created_at"], name="chat_message_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk} turn {self.turn}"

    @classmethod
    def placeholder(cls, lane: Lane, *, branch: int, turn: int, attempt: int = 0) -> Message:
        """An answer about to stream in ``lane`` (unsaved): its run fills it in."""
        answer = cls(
            conversation_id=lane.conversation_id,
            lane=lane,
            branch=branch,
            turn=turn,
            role=cls.Role.ASSISTANT,
            model=lane.model,
            api=lane.wire_api if lane.wire_api == "responses" else "",
            status=cls.Status.STREAMING,
            heartbeat_at=timezone.now(),
            attempt=attempt,
        )
        if Lane.conversation.is_cached(lane):
            answer.conversation = lane.conversation  # no query to render it
        return answer

    @property
    def dom_id(self) -> str:
        return f"m-{self.pk}"

    @property
    def shown_mode(self) -> str:
        """chat | completion: how this message was made, so how it is shown."""
        return self.mode or self.conversation.mode

    @property
    def display_status(self) -> str:
        """`streaming` whose heartbeat went stale means the run died with its process."""
        if self.status == self.Status.STREAMING and self.is_stale():
            return self.Status.INTERRUPTED
        return self.status

    def is_stale(self, now: Any = None) -> bool:
        now = now or timezone.now()
        beat = self.heartbeat_at or self.created_at
        return beat is not None and now - beat > timedelta(seconds=settings.RUN_STALE_AFTER)
