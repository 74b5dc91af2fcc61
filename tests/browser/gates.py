"""Answers that wait for the test: the fake endpoint on its own port (the test can reach
it, unlike the app's in-process demo), and its ``hold_after``/``gate`` directives.

A test that must look at an answer while it streams holds it at a known point instead
of hoping that a paced stream lasts longer than a busy machine takes to look."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from django.contrib.auth import get_user_model

from chat.models import EndpointProfile


def use_local_fake(base_url: str, *, username: str | None = None) -> None:
    """The (first) account's only endpoint becomes the fake at ``base_url``; reload the page
    afterwards if it shows an endpoint picker."""
    users = get_user_model().objects
    owner = users.get(username=username) if username else users.get()
    EndpointProfile.objects.filter(owner=owner).delete()
    EndpointProfile.objects.create(
        owner=owner,
        name="Local fake",
        base_url=base_url,
        default_model="demo",
        models_cache=["demo", "demo-fast", "demo-slow"],
    )


class Gate:
    """One gate of the fake at ``base_url``: ``script(...)`` scripts an answer that holds
    after ``hold_after`` tokens until ``open()``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.name = f"gate-{uuid.uuid4().hex[:12]}"

    def script(self, *, hold_after: int, **directives: Any) -> str:
        """The ``@fake`` line (with its newline) for a prompt."""
        held = {**directives, "hold_after": hold_after, "gate": self.name}
        return f"\n@fake {json.dumps(held)}"

    def open(self) -> None:
        httpx.post(f"{self.base_url}/fake/gates/{self.name}", timeout=30).raise_for_status()
