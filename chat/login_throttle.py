"""Log-in throttling: after too many failed log-ins in a window, per account and per
client address, further attempts are refused (the right password too) until the window
has moved on, with a message saying when to try again.

Counted in the database, so it holds across workers and restarts. A refused attempt is not
counted (it was never checked), so an attacker gets LOGIN_FAILURES_PER_ACCOUNT guesses per
account and LOGIN_FAILURES_PER_ADDRESS per address per window. A successful log-in clears
its account's count, never the address's (one's own account must not reset the guesses
spent on others)."""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from chat.models import LoginFailure

Scope = LoginFailure.Scope


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    header = settings.LOGIN_THROTTLE_IP_HEADER
    if header:
        # Set by the reverse proxy in front (the last hop it adds is the client it saw).
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        value = value.split(",")[-1].strip()
        if value:
            return value[:150]
    return request.META.get("REMOTE_ADDR", "")[:150]


def _account(username: str) -> str:
    return username.strip().casefold()[:150]


def _keys(request: HttpRequest | None, username: str) -> list[tuple[str, str, int]]:
    keys = [(Scope.ACCOUNT, _account(username), settings.LOGIN_FAILURES_PER_ACCOUNT)]
    address = client_address(request)
    if address:
        keys.append((Scope.ADDRESS, address, settings.LOGIN_FAILURES_PER_ADDRESS))
    return [(scope, key, limit) for scope, key, limit in keys if limit > 0 and key]


def login_wait(*, request: HttpRequest | None, username: str) -> int:
    """Seconds until this account and this address may try again; 0: now."""
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    now = timezone.now()
    wait = 0.0
    for scope, key, limit in _keys(request, username):
        recent = list(
            LoginFailure.objects.filter(scope=scope, key=key, created_at__gt=now - window)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:limit]
        )
        if len(recent) >= limit:
            # Free again when the oldest of the last `limit` failures leaves the window.
            wait = max(wait, (recent[-1] + window - now).total_seconds())
    return math.ceil(wait)


def login_failed(*, request: HttpRequest | None, username: str) -> None:
    now = timezone.now()
    LoginFailure.objects.bulk_create(
        [LoginFailure(scope=s, key=k, created_at=now) for s, k, _ in _keys(request, username)]
    )
    # Old rows are no longer counted: keep the table as small as the window.
    stale = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    LoginFailure.objects.filter(created_at__lt=stale).delete()


def login_succeeded(*, username: str) -> None:
    LoginFailure.objects.filter(scope=Scope.ACCOUNT, key=_account(username)).delete()


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
