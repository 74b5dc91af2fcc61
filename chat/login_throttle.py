"""Log-in throttling: after too many failed log-ins in a window, per account and per
client address, further attempts are refused (the right password too) until the window
has moved on, with a message saying when to try again.

Counted in the database, so it holds across workers and restarts. An attempt is recorded
as a failure *before* its password is checked, and the check counts every other recorded
attempt, those still being checked too: concurrent guesses each see the others, so no more
than the limit get their password checked. A refused attempt's row is deleted (it was never
checked), so an attacker gets LOGIN_FAILURES_PER_ACCOUNT guesses per account and
LOGIN_FAILURES_PER_ADDRESS per address per window. A successful log-in deletes its own rows
and clears its account's count, never the address's (one's own account must not reset the
guesses spent on others)."""

from __future__ import annotations

import math
from collections.abc import Collection
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


def login_attempt(*, request: HttpRequest | None, username: str) -> tuple[int, list[int]]:
    """Records this attempt as a failure, then says how many seconds this account and this
    address must wait (0: check the password now) and which rows are this attempt's (for
    login_failed / login_succeeded). A refused attempt's rows are deleted at once."""
    now = timezone.now()
    rows = [
        LoginFailure.objects.create(scope=s, key=k, created_at=now)
        for s, k, _ in _keys(request, username)
    ]
    attempt = [row.pk for row in rows]
    wait = login_wait(request=request, username=username, attempt=attempt)
    if wait:
        LoginFailure.objects.filter(pk__in=attempt).delete()
    return wait, attempt


def login_wait(*, request: HttpRequest | None, username: str, attempt: Collection[int] = ()) -> int:
    """Seconds until this account and this address may try again; 0: now. Counts the
    failures recorded so far but the rows of `attempt` (the one asking)."""
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    now = timezone.now()
    wait = 0.0
    for scope, key, limit in _keys(request, username):
        recent = list(
            LoginFailure.objects.filter(scope=scope, key=key, created_at__gt=now - window)
            .exclude(pk__in=attempt)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:limit]
        )
        if len(recent) >= limit:
            # Free again when the oldest of the last `limit` failures leaves the window.
            wait = max(wait, (recent[-1] + window - now).total_seconds())
    return math.ceil(wait)


def login_failed(*, attempt: Collection[int] = ()) -> None:
    """The password was wrong: the attempt's rows stay, as failures."""
    # Old rows are no longer counted: keep the table as small as the window.
    stale = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    LoginFailure.objects.filter(created_at__lt=stale).exclude(pk__in=attempt).delete()


def login_succeeded(*, username: str, attempt: Collection[int] = ()) -> None:
    LoginFailure.objects.filter(pk__in=attempt).delete()
    LoginFailure.objects.filter(scope=Scope.ACCOUNT, key=_account(username)).delete()


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
