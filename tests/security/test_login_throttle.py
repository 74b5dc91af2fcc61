"""Log-in throttling, per account and per client address, counted in the database.

Before: 25 wrong passwords in ~6 s all got 200, then the right one logged in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chat.models import LoginFailure
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(username: str, password: str, *, address: str = "203.0.113.7", **extra) -> Client:
    client = Client(REMOTE_ADDR=address, **extra)
    client.response = client.post(reverse("login"), {"username": username, "password": password})
    return client


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_too_many_wrong_passwords_lock_the_account_with_a_clear_message(owner):
    for _ in range(5):
        client = _login("owner", "wrong")
        assert client.response.status_code == 200 and not _logged_in(client)
    client = _login("owner", PASSWORD)  # the right one, too late
    assert client.response.status_code == 429
    assert not _logged_in(client)
    text = client.response.content.decode()
    assert "Too many failed log-ins" in text and "Try again in 15 minutes" in text
    # From another address too: the lock is on the account.
    assert _login("OWNER ", PASSWORD, address="198.51.100.9").response.status_code == 429


def test_the_lock_lifts_when_the_window_moves_on(owner):
    for _ in range(5):
        _login("owner", "wrong")
    assert _login("owner", PASSWORD).response.status_code == 429
    LoginFailure.objects.update(created_at=timezone.now() - timedelta(seconds=901))
    client = _login("owner", PASSWORD)
    assert client.response.status_code == 302 and _logged_in(client)


def test_a_good_log_in_clears_the_accounts_count(owner):
    for _ in range(4):
        _login("owner", "wrong")
    assert _logged_in(_login("owner", PASSWORD))
    for _ in range(4):
        _login("owner", "wrong")
    assert _logged_in(_login("owner", PASSWORD))


def test_another_account_from_the_same_address_still_logs_in(owner, outsider):
    for _ in range(5):
        _login("owner", "wrong")
    client = _login("outsider", PASSWORD)
    assert client.response.status_code == 302 and _logged_in(client)


def test_too_many_failures_from_one_address_lock_that_address(owner, outsider, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 8
    for number in range(8):  # spread over accounts so that no account is locked
        _login(f"guess{number % 3}", "wrong")
    client = _login("outsider", PASSWORD)
    assert client.response.status_code == 429 and not _logged_in(client)
    assert "Try again in" in client.response.content.decode()
    # Another address is not affected.
    assert _logged_in(_login("outsider", PASSWORD, address="198.51.100.9"))


def test_the_count_lives_in_the_database_so_every_worker_sees_it(owner):
    """Failures another worker recorded (rows, not this process's memory) count here."""
    LoginFailure.objects.bulk_create([LoginFailure(scope="account", key="owner") for _ in range(5)])
    assert _login("owner", PASSWORD).response.status_code == 429


def test_the_client_address_comes_from_the_proxy_header_when_configured(owner, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    settings.LOGIN_THROTTLE_IP_HEADER = "X-Forwarded-For"
    for number in range(3):
        _login(f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR="10.0.0.1, 192.0.2.50")
    blocked = _login("owner", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.50")
    assert blocked.response.status_code == 429
    # Same proxy (REMOTE_ADDR), another client: allowed.
    assert _logged_in(_login("owner", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.51"))


def test_the_admin_log_in_is_throttled_too(django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": "root", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "root", "password": PASSWORD})
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_old_failures_are_deleted(owner):
    LoginFailure.objects.create(
        scope="account", key="x", created_at=timezone.now() - timedelta(days=1)
    )
    _login("owner", "wrong")
    assert not LoginFailure.objects.filter(key="x").exists()


def test_concurrent_wrong_attempts_cannot_exceed_the_limit(owner, monkeypatch):
    """Before: the count was checked before the password and the failure written after it,
    so attempts in flight together all passed the check (here 12 password checks for a
    limit of 5). Interleaved as the worst case: each attempt's password check runs while
    the next attempt starts, so every attempt is between the two steps at once."""
    import django.contrib.auth.forms as auth_forms
    from django.test import RequestFactory

    from chat.forms import ThrottledAuthenticationForm

    real_authenticate = auth_forms.authenticate
    started, checked, outcomes = [], [], []

    def attempt() -> None:
        started.append(1)
        address = f"198.51.100.{len(started)}"
        request = RequestFactory().post(reverse("login"), REMOTE_ADDR=address)
        form = ThrottledAuthenticationForm(
            request=request, data={"username": "owner", "password": "wrong"}
        )
        outcomes.append("throttled" if not form.is_valid() and form.throttled else "checked")

    def authenticate(request, **credentials):
        checked.append(request.META["REMOTE_ADDR"])
        while len(started) < 12:  # the other attempts arrive mid-check
            attempt()
        return real_authenticate(request, **credentials)

    monkeypatch.setattr(auth_forms, "authenticate", authenticate)
    attempt()
    assert len(checked) == 5  # the limit per account, not 12
    assert outcomes.count("checked") == 5 and outcomes.count("throttled") == 7
    # The refused attempts left no rows; the five wrong ones did, and lock the account.
    assert LoginFailure.objects.filter(scope="account", key="owner").count() == 5
    monkeypatch.setattr(auth_forms, "authenticate", real_authenticate)
    assert _login("owner", PASSWORD).response.status_code == 429
