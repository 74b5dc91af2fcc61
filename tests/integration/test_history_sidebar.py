"""The history sidebar: order, rename, pin, delete, paging; each only on one's own."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat import history
from chat.models import Conversation
from tests.integration.history_world import chat_with

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def sidebar_titles(html: str) -> list[str]:
    return re.findall(r'class="conv-link" title="([^"]*)"', html)


def test_the_sidebar_lists_pinned_first_then_newest(owner_client, owner):
    a = chat_with(owner, "Alpha", "x")
    chat_with(owner, "Beta", "x")
    c = chat_with(owner, "Gamma", "x")
    history.conversation_pin(conversation=a, pinned=True)
    c.save()  # the most recent activity
    page = owner_client.get(reverse("chat:index")).content.decode()
    assert sidebar_titles(page) == ["Alpha", "Gamma", "Beta"]
    assert "Pinned: </span>Alpha" in page


def test_the_sidebar_costs_one_query_however_long_the_history(owner_client, owner):
    chat_with(owner, "One", "x")
    with CaptureQueriesContext(connection) as one:
        owner_client.get(reverse("chat:endpoints"))
    for i in range(30):
        chat_with(owner, f"More {i}", "x")
    with CaptureQueriesContext(connection) as many:
        html = owner_client.get(reverse("chat:endpoints")).content.decode()
    assert len(sidebar_titles(html)) == 31
    assert len(many) == len(one)


def test_the_sidebar_pages_older_conversations(owner_client, owner, monkeypatch):
    monkeypatch.setattr(history, "SIDEBAR_PAGE", 3)
    for i in range(7):
        chat_with(owner, f"C{i}", "x")
    first = owner_client.get(reverse("chat:index")).content.decode()
    assert sidebar_titles(first) == ["C6", "C5", "C4"]
    assert "?offset=3" in first
    second = owner_client.get(reverse("chat:history_list"), {"offset": 3}, headers=HTMX)
    assert sidebar_titles(second.content.decode()) == ["C3", "C2", "C1"]
    last = owner_client.get(reverse("chat:history_list"), {"offset": 6}, headers=HTMX)
    assert sidebar_titles(last.content.decode()) == ["C0"]
    assert b"offset=" not in last.content
    junk = owner_client.get(reverse("chat:history_list"), {"offset": "x"}, headers=HTMX)
    assert sidebar_titles(junk.content.decode())[0] == "C6"


def test_rename_inline_shows_a_form_then_saves(owner_client, owner):
    conversation = chat_with(owner, "Old title", "x")
    before = Conversation.objects.get(pk=conversation.pk).updated_at
    url = reverse("chat:history_rename", args=[conversation.pk])
    form = owner_client.get(url, headers=HTMX).content.decode()
    assert 'name="title" value="Old title"' in form and "autofocus" in form
    response = owner_client.post(url, {"title": "  New   <title> "}, headers=HTMX)
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.title == "New <title>"
    assert conversation.updated_at == before  # renaming does not move it up the list
    assert "New &lt;title&gt;" in response.content.decode()
    trigger = json.loads(response["HX-Trigger"])
    assert trigger == {"conversationRenamed": {"id": str(conversation.pk), "title": "New <title>"}}


def test_rename_refuses_an_empty_title_and_cancel_changes_nothing(owner_client, owner):
    conversation = chat_with(owner, "Keep me", "x")
    url = reverse("chat:history_rename", args=[conversation.pk])
    response = owner_client.post(url, {"title": "   "}, headers=HTMX)
    assert b"A title cannot be empty." in response.content
    response = owner_client.post(url, {"title": "x" * 201}, headers=HTMX)
    assert b"At most 200 characters." in response.content
    response = owner_client.post(url, {"title": "Changed", "cancel": "1"}, headers=HTMX)
    assert b"Keep me" in response.content
    conversation.refresh_from_db()
    assert conversation.title == "Keep me"


def test_rename_without_javascript_is_a_page_and_a_redirect(owner_client, owner):
    conversation = chat_with(owner, "Plain", "x")
    url = reverse("chat:history_rename", args=[conversation.pk])
    assert b"<html" in owner_client.get(url).content
    assert owner_client.post(url, {"title": ""}).status_code == 400
    response = owner_client.post(url, {"title": "Renamed"})
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])


def test_pin_and_unpin_refresh_the_list(owner_client, owner):
    chat_with(owner, "Newer", "x")
    conversation = chat_with(owner, "Older", "x")
    Conversation.objects.filter(title="Newer").update(title="Newer")
    Conversation.objects.get(title="Newer").save()
    url = reverse("chat:history_pin", args=[conversation.pk])
    response = owner_client.post(url, {"pinned": "1"}, headers=HTMX)
    assert sidebar_titles(response.content.decode()) == ["Older", "Newer"]
    assert Conversation.objects.get(pk=conversation.pk).pinned
    response = owner_client.post(url, {"pinned": "0"}, headers=HTMX)
    assert sidebar_titles(response.content.decode()) == ["Newer", "Older"]
    assert not Conversation.objects.get(pk=conversation.pk).pinned
    assert owner_client.get(url).status_code == 405


def test_pin_during_a_search_keeps_showing_the_results(owner_client, owner):
    conversation = chat_with(owner, "Found", "needle")
    chat_with(owner, "Other", "hay")
    url = reverse("chat:history_pin", args=[conversation.pk])
    response = owner_client.post(url, {"pinned": "1", "q": "needle"}, headers=HTMX)
    html = response.content.decode()
    assert "<mark>needle</mark>" in html and "Other" not in html


def test_delete_from_the_sidebar(owner_client, owner):
    shown = chat_with(owner, "Shown", "x")
    other = chat_with(owner, "Other", "x")
    # Another conversation than the one on screen: the list is refreshed in place.
    response = owner_client.post(
        reverse("chat:history_delete", args=[other.pk]),
        headers={**HTMX, "HX-Current-URL": f"http://testserver/c/{shown.pk}/"},
    )
    assert response.status_code == 200
    assert sidebar_titles(response.content.decode()) == ["Shown"]
    assert "conv-item active" in response.content.decode()
    assert not Conversation.objects.filter(pk=other.pk).exists()
    # The one on screen: the page goes to a new conversation.
    response = owner_client.post(
        reverse("chat:history_delete", args=[shown.pk]),
        headers={**HTMX, "HX-Current-URL": f"http://testserver/c/{shown.pk}/"},
    )
    assert response["HX-Redirect"] == reverse("chat:index")
    assert not Conversation.objects.filter(owner=owner).exists()


def test_delete_without_javascript_redirects(owner_client, owner):
    conversation = chat_with(owner, "Bye", "x")
    response = owner_client.post(reverse("chat:history_delete", args=[conversation.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("chat:index")


def test_the_delete_form_asks_for_confirmation(owner_client, owner):
    chat_with(owner, "Careful", "x")
    html = owner_client.get(reverse("chat:index")).content.decode()
    assert 'data-confirm="Delete “Careful” and all its messages?"' in html


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("chat:history_rename", "get"),
        ("chat:history_rename", "post"),
        ("chat:history_pin", "post"),
        ("chat:history_delete", "post"),
    ],
)
def test_another_users_conversation_is_a_404(owner_client, outsider, name, method):
    theirs = chat_with(outsider, "Theirs", "x")
    url = reverse(name, args=[theirs.pk])
    response = getattr(owner_client, method)(url, {"title": "PWNED", "pinned": "1"}, headers=HTMX)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.title == "Theirs" and not theirs.pinned


@pytest.mark.parametrize("name", ["chat:history_rename", "chat:history_pin", "chat:history_delete"])
def test_the_sidebar_actions_need_the_csrf_token(owner, name):
    conversation = chat_with(owner, "Guarded", "x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse(name, args=[conversation.pk]), {"title": "x", "pinned": "1"})
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "Guarded" and not conversation.pinned


def test_the_sidebar_needs_an_account():
    client = Client()
    for name in ("chat:history_list", "chat:history_search", "chat:import", "chat:export_all"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_title_in_any_script_renames_fine(owner_client, owner):
    conversation = chat_with(owner, "Old", "x")
    url = reverse("chat:history_rename", args=[conversation.pk])
    response = owner_client.post(url, {"title": "天气 ☀️ Zürich"}, headers=HTMX)
    assert response.status_code == 200
    response["HX-Trigger"].encode("latin-1")  # a header must be latin-1
    assert json.loads(response["HX-Trigger"])["conversationRenamed"]["title"] == "天气 ☀️ Zürich"
    conversation.refresh_from_db()
    assert conversation.title == "天气 ☀️ Zürich"


def test_a_page_past_the_end_is_empty_not_no_conversations(owner_client, owner):
    chat_with(owner, "Only", "x")
    response = owner_client.get(reverse("chat:history_list"), {"offset": 200}, headers=HTMX)
    assert b"No conversations yet" not in response.content


def test_a_nul_in_a_title_is_replaced_not_a_crash(owner_client, owner):
    conversation = chat_with(owner, "Old", "x")
    url = reverse("chat:history_rename", args=[conversation.pk])
    assert owner_client.post(url, {"title": "a\x00b"}, headers=HTMX).status_code == 200
    conversation.refresh_from_db()
    assert conversation.title == "a\ufffdb"
