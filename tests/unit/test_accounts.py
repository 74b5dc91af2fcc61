from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from chat.models import EndpointProfile

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-passphrase-42"


def test_an_empty_database_sends_the_first_visit_to_setup(client):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("setup")
    assert b"Create the first account" in response.content


def test_the_first_account_is_an_admin_with_a_demo_endpoint(client):
    response = client.post(
        reverse("setup"),
        {"username": "ada", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="ada")
    assert user.is_superuser and user.is_staff
    demo = EndpointProfile.objects.get(owner=user)
    assert demo.is_demo and demo.name == "Demo (offline)" and demo.default_model == "demo"
    # logged in straight away
    assert client.get("/").status_code == 200


def test_setup_is_gone_once_a_user_exists(client, owner):
    assert client.get(reverse("setup")).status_code == 302
    client.post(reverse("setup"), {"username": "eve", "password1": PASSWORD, "password2": PASSWORD})
    assert not get_user_model().objects.filter(username="eve").exists()


def test_signup_is_closed_by_default_and_opens_by_setting(client, owner, settings):
    assert client.get(reverse("signup")).status_code == 404
    settings.SIGNUP_OPEN = True
    client.post(
        reverse("signup"), {"username": "bob", "password1": PASSWORD, "password2": PASSWORD}
    )
    bob = get_user_model().objects.get(username="bob")
    assert not bob.is_staff and not bob.is_superuser


@pytest.mark.parametrize(
    "url", ["/", "/endpoints/", "/endpoints/new/", "/accounts/password/", "/models/?profile=x"]
)
def test_every_page_but_login_requires_auth(client, owner, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_logout_and_password_change(client, owner):
    from tests.conftest import PASSWORD as OWNER_PASSWORD

    response = client.post(reverse("login"), {"username": "owner", "password": OWNER_PASSWORD})
    assert response.status_code == 302
    response = client.post(
        reverse("password_change"),
        {"old_password": OWNER_PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


def test_pages_carry_a_strict_content_security_policy(client, owner):
    csp = client.get(reverse("login"))["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "img-src 'self' data:" in csp


def test_every_kind_of_app_page_carries_the_same_strict_policy(client, owner):
    """The policy the pages are built for, on each kind of page (and on errors), so no
    page can quietly depend on inline script: a page that needed it would not work."""
    from chat import conversations, history
    from chat.middleware import CSP
    from chat.models import EndpointProfile

    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    token = history.share_create(conversation=conversation)
    anonymous = [reverse("login"), reverse("chat:shared", args=[token]), "/no-such-page/"]
    for url in anonymous:
        assert client.get(url)["Content-Security-Policy"] == CSP, url
    client.force_login(owner)
    pages = [
        reverse("chat:index"),
        reverse("chat:conversation", args=[conversation.pk]),
        reverse("chat:endpoints"),
        reverse("chat:endpoint_new"),
        reverse("chat:endpoint_edit", args=[profile.pk]),
        reverse("chat:leaderboard"),
        reverse("chat:import"),
        reverse("chat:history_search") + "?q=x",
        reverse("password_change"),
        "/no-such-page/",
    ]
    for url in pages:
        response = client.get(url, follow=True)
        assert response.status_code in (200, 404), url
        assert response["Content-Security-Policy"] == CSP, url
        assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
        # Private, live pages: never kept by a cache (nor restored stale by Back).
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
