"""Endpoint profiles: the offline demo one, the one a new conversation starts with,
and the model a form shows for one.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from chat.models import EndpointProfile, Lane

DEMO_BASE_URL = "http://fake.invalid/v1"
DEMO_MODELS = ["demo", "demo-fast", "demo-slow"]


def profile_ensure_demo(*, owner: AbstractBaseUser) -> EndpointProfile | None:
    if not settings.DEMO_ENDPOINT:
        return None
    profile, _ = EndpointProfile.objects.get_or_create(
        owner=owner,
        is_demo=True,
        defaults={
            "name": "Demo (offline)",
            "base_url": DEMO_BASE_URL,
            "default_model": "demo",
            "models_cache": DEMO_MODELS,
            "models_fetched_at": timezone.now(),
        },
    )
    return profile


def profile_default(*, owner: AbstractBaseUser) -> EndpointProfile | None:
    """The profile a new conversation starts with: the last one used, else any."""
    lane = (
        Lane.objects.filter(conversation__owner=owner, profile__isnull=False)
        .select_related("profile")
        .order_by("-conversation__updated_at")
        .first()
    )
    if lane:
        return lane.profile
    return EndpointProfile.objects.filter(owner=owner).order_by("-is_demo", "name").first()


def model_for_profile(*, profile: EndpointProfile, current: str = "") -> str:
    """The model a form shows once `profile` is picked: the one typed if this endpoint
    lists it, else the endpoint's default, else its first listed model, else none (never
    another endpoint's model, which this one would refuse or silently replace)."""
    names = profile.model_names
    if current and current in names:
        return current
    return profile.default_model or next(iter(names), "")
