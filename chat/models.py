from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat import crypto, upstream
from chat import quirks as quirk_table

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


class EndpointProfile(models.Model):
    """An OpenAI-compatible endpoint: base URL, secrets (encrypted), and what we know of it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profiles"
    )
    name = models.CharField(max_length=100)
    base_url = models.URLField(max_length=500)
    # Ciphertext only; read through .api_key / .extra_headers.
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, default="", editable=False)
    extra_headers_encrypted = models.TextField(blank=True, default="", editable=False)
    default_model = models.CharField(max_length=200, blank=True, default="")
    models_cache = models.JSONField(default=list, blank=True)
    models_fetched_at = models.DateTimeField(null=True, blank=True)
    connect_timeout = models.FloatField(default=10.0)
    first_byte_timeout = models.FloatField(default=120.0)
    idle_timeout = models.FloatField(default=60.0)
    capabilities = models.JSONField(default=dict, blank=True)
    quirks = models.JSONField(default=dict, blank=True)
    # Optional prices (per million tokens) to show what an answer cost.
    price_input = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    price_output = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_profile_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value)
        self.api_key_last4 = value[-4:] if len(value) >= 8 else ""

    @property
    def masked_key(self) -> str:
        if not self.api_key_encrypted:
            return ""
        return f"…{self.api_key_last4}" if self.api_key_last4 else "set"

    @property
    def extra_headers(self) -> dict[str, str]:
        raw = crypto.decrypt(self.extra_headers_encrypted)
        return json.loads(raw) if raw else {}

    @extra_headers.setter
    def extra_headers(self, value: dict[str, str]) -> None:
        self.extra_headers_encrypted = crypto.encrypt(json.dumps(value)) if value else ""

    @property
    def model_names(self) -> list[str]:
        return [m for m in self.models_cache if isinstance(m, str)]

    def quirk(self, name: str) -> Any:
        """Quirk ``name`` (chat.quirks): the stored value, else the table's default."""
        return quirk_table.quirk(self.quirks, name)

    @property
    def model_optional(self) -> bool:
        """The endpoint answers without ``model`` (it has a default): a blank model is
        allowed and sent as no ``model`` at all."""
        return self.quirk("model_optional")

    def endpoint(self) -> upstream.Endpoint:
        """What a request to this endpoint is made with: its URL, secrets, timeouts and
        where its reasoning text arrives."""
        return upstream.Endpoint(
            base_url=self.base_url,
            api_key=self.api_key,
            headers=self.extra_headers,
            connect_timeout=self.connect_timeout,
            first_byte_timeout=self.first_byte_timeout,
            idle_timeout=self.idle_timeout,
            reasoning_field=self.quirk("reasoning_field"),
        )


class Preset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets"
    )
    name = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    system_prompt = models.TextField(blank=True, default="")
    # The tools editor's entries ([{"tool", "enabled", "mock"}]) and tool_choice, when the
    # preset was saved "with the tools"; None = the preset leaves a conversation's tools be
    # ([] is a deliberate "no tools").
    tools = models.JSONField(null=True, blank=True)
    tool_choice = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_preset_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


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
    # Read-only share link: an unguessable token, revocable (None = not shared).
    share_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    # Edited questions: the tree of branches and the version shown of each (chat/versions.py).
    versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
    def effective_tools(self) -> list[dict[str, Any]]:
        """The tools editor's entries this lane uses: its own if it has them, else the
        conversation's."""
        return self.tools if self.tools is not None else self.conversation.tools


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


class Vote(models.Model):
    """A blind-comparison verdict on one turn, with who the lanes really were."""

    class Verdict(models.TextChoices):
        WINNER = "winner"
        TIE = "tie"
        ALL_BAD = "all_bad"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes"
    )
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="votes")
    turn = models.PositiveIntegerField()
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    winner_position = models.PositiveSmallIntegerField(null=True, blank=True)
    # [{"position", "label", "profile", "model", "params"}] at the time of the vote.
    lanes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "turn"], name="one_vote_per_turn")
        ]

    def __str__(self) -> str:
        return f"vote {self.verdict} on {self.conversation_id} turn {self.turn}"


class LoginFailure(models.Model):
    """One failed log-in, counted per account and per client address (in the database,
    so every worker sees the same count; see chat/login_throttle.py)."""

    class Scope(models.TextChoices):
        ACCOUNT = "account"
        ADDRESS = "address"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["scope", "key", "created_at"], name="login_failure_key")]

    def __str__(self) -> str:
        return f"login failure {self.scope} {self.key} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class LiveSocket(models.Model):
    """One open websocket, so the sockets per user can be capped across workers
    (chat/wsauth.py). Deleted when the socket closes; a worker that dies leaves its rows,
    which stop counting once the worker's heartbeat (``seen_at``, refreshed for all of
    its rows at once) is stale."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    worker = models.CharField(max_length=32)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["user", "seen_at"], name="live_socket_user"),
            models.Index(fields=["worker"], name="live_socket_worker"),
        ]

    def __str__(self) -> str:
        return f"socket of user {self.user_id} on {self.worker}"
