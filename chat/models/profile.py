"""Endpoints (base URL, encrypted secrets, what we know of them) and presets."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import models

from chat import crypto, upstream
from chat import quirks as quirk_table


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
