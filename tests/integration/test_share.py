"""Read-only share links: anyone with the link reads the transcript and nothing else."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat import history
from chat.models import Conversation, Message
from tests.integration.history_world import (
    SECRET_HEADER_VALUE,
    SECRET_KEY_VALUE,
    chat_with,
    rich_conversation,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def share(client, conversation) -> str:
    response = client.post(reverse("chat:share", args=[conversation.pk]), headers=HTMX)
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.share_token
    return conversation.share_token


def test_sharing_makes_an_unguessable_link_anyone_can_read(owner_client, owner):
    conversation = chat_with(
        owner, "Shared chat", "What is **WAL**?", "It is *write-ahead* logging."
    )
    token = share(owner_client, conversation)
    assert len(token) == 32  # token_urlsafe(24)
    panel = owner_client.get(reverse("chat:share", args=[conversation.pk]), headers=HTMX)
    assert f"http://testserver/s/{token}/" in panel.content.decode()

    anonymous = Client()
    response = anonymous.get(reverse("chat:shared", args=[token]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shared chat" in html
    assert "<em>write-ahead</em>" in html  # the answer's saved, sanitised rendering
    assert "What is **WAL**?" in html  # the user's text as text
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]


def test_the_shared_page_shows_no_endpoint_secret_or_request_detail(owner_client, owner):
    conversation = rich_conversation(owner)
    token = share(owner_client, conversation)
    html = Client().get(reverse("chat:shared", args=[token])).content.decode()
    for leak in (
        SECRET_KEY_VALUE,
        SECRET_KEY_VALUE[-4:],
        SECRET_HEADER_VALUE,
        "llm.example.com",
        "127.0.0.1:8001",
        "Work proxy",
        "Local vLLM",
        "Overloaded",  # an error's detail may name the endpoint
        "raw_response",
        "delta",
        '"messages"',  # the request body
        "Inspect",
        "/m/",
    ):
        assert leak not in html, leak
    assert "This answer ended with an error." in html
    assert "Old try" not in html  # an earlier, hidden attempt
    assert "It is <strong>18 °C</strong> and cloudy in Paris." in html
    assert "What&#x27;s the weather in Paris? &lt;b&gt;now&lt;/b&gt;" in html
    assert 'src="data:image/png;base64,' in html
    assert "get_weather" in html and "{&quot;city&quot;: &quot;Paris&quot;}" in html
    assert "Lane A" in html and "Lane B" in html


def test_a_blind_comparison_shares_no_model_names(owner_client, owner):
    conversation = rich_conversation(owner)
    Conversation.objects.filter(pk=conversation.pk).update(blind=True)
    token = share(owner_client, conversation)
    html = Client().get(reverse("chat:shared", args=[token])).content.decode()
    assert "gpt-x" not in html and "llama-3" not in html
    # Answers under their letters in their turn (shuffled), as the owner's page shows
    # them: never "Lane A", which would tell the lanes apart across turns.
    assert "Answer A" in html and "Answer B" in html and "Lane A" not in html
    assert "each turn's answers shuffled" in html


def test_revoking_kills_the_link_and_sharing_again_makes_a_new_one(owner_client, owner):
    conversation = chat_with(owner, "Revocable", "q", "a")
    token = share(owner_client, conversation)
    assert share(owner_client, conversation) == token  # sharing twice keeps the link
    response = owner_client.post(reverse("chat:share_revoke", args=[conversation.pk]), headers=HTMX)
    assert response.status_code == 200 and b"Not shared" in response.content
    assert Client().get(reverse("chat:shared", args=[token])).status_code == 404
    new = share(owner_client, conversation)
    assert new != token
    assert Client().get(reverse("chat:shared", args=[token])).status_code == 404
    assert Client().get(reverse("chat:shared", args=[new])).status_code == 200


def test_only_the_exact_token_opens_the_page(owner):
    token = history.share_create(conversation=chat_with(owner, "Exact", "q"))
    assert Client().get(f"/s/{token}/").status_code == 200
    near_misses = [
        token[:-1],
        token + "x",
        token[:1],
        token.swapcase(),
        token[::-1],
        "x" * 65,
        "%00",
        "nope",
    ]
    for guess in near_misses:
        assert Client().get(f"/s/{guess}/").status_code == 404, guess


def test_an_unshared_conversation_has_no_link(owner):
    chat_with(owner, "Private", "q")
    assert not Conversation.objects.filter(share_token__isnull=False).exists()
    assert Client().get("/s/None/").status_code == 404


def test_another_user_cannot_share_or_revoke(owner_client, outsider):
    theirs = chat_with(outsider, "Theirs", "q")
    history.share_create(conversation=theirs)
    token = theirs.share_token
    for name in ("chat:share", "chat:share_revoke"):
        assert owner_client.post(reverse(name, args=[theirs.pk])).status_code == 404
    assert owner_client.get(reverse("chat:share", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.share_token == token


def test_sharing_needs_the_csrf_token(owner):
    conversation = chat_with(owner, "Guarded", "q")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("chat:share", args=[conversation.pk])).status_code == 403
    conversation.refresh_from_db()
    assert conversation.share_token is None


def test_the_shared_page_costs_the_same_whatever_the_length(owner):
    conversation = chat_with(owner, "Long", *[f"message {i}" for i in range(4)])
    token = history.share_create(conversation=conversation)
    with CaptureQueriesContext(connection) as short:
        Client().get(reverse("chat:shared", args=[token]))
    for i in range(40):
        Message.objects.create(conversation=conversation, turn=10 + i, role="user", content="x")
    with CaptureQueriesContext(connection) as long:
        Client().get(reverse("chat:shared", args=[token]))
    assert len(long) == len(short) <= 4


def test_the_share_panel_works_without_javascript(owner_client, owner):
    conversation = chat_with(owner, "No JS", "q")
    page = owner_client.get(reverse("chat:share", args=[conversation.pk]))
    assert b"<html" in page.content and b"Create a share link" in page.content
    response = owner_client.post(reverse("chat:share", args=[conversation.pk]))
    assert response.status_code == 200 and b"Revoke link" in response.content


def test_the_conversation_menu_partial_offers_export_and_share(owner):
    from django.template.loader import render_to_string

    conversation = chat_with(owner, "Menu", "q")
    html = render_to_string("chat/_conversation_menu.html", {"conversation": conversation})
    assert reverse("chat:export_json", args=[conversation.pk]) in html
    assert reverse("chat:export_markdown", args=[conversation.pk]) in html
    assert reverse("chat:share", args=[conversation.pk]) in html
    assert "<script" not in html and "style=" not in html


def test_staff_can_revoke_share_links_in_the_admin_but_never_see_them(owner, django_user_model):
    conversation = chat_with(owner, "Admin sees", "q")
    token = history.share_create(conversation=conversation)
    admin_user = django_user_model.objects.create_superuser("boss", password="x" * 12)
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/chat/conversation/")
    assert listing.status_code == 200 and token not in listing.content.decode()
    change = client.get(f"/admin/chat/conversation/{conversation.pk}/change/")
    assert change.status_code == 200 and token not in change.content.decode()
    response = client.post(
        "/admin/chat/conversation/",
        {"action": "revoke_share_links", "_selected_action": [str(conversation.pk)]},
    )
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.share_token is None
    assert Client().get(reverse("chat:shared", args=[token])).status_code == 404
