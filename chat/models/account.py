"""Votes on a turn, and the account-level records: login failures, open sockets."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.models.conversation import Conversation


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
    (chat/sockets/auth.py). Deleted when the socket closes; a worker that dies leaves its rows,
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
