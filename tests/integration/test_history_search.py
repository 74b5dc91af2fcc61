"""Searching the history: titles and message text, owner-scoped, highlighted safely, on
whichever index the database has (FTS5 on SQLite, tsvector + GIN on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat import search
from chat.models import Message
from tests.integration.history_world import chat_with

pytestmark = pytest.mark.django_db


def titles(hits) -> list[str]:
    return [hit.title for hit in hits]


def test_the_database_has_its_index():
    expected = {"postgresql": "postgresql", "sqlite": "fts5"}[connection.vendor]
    assert search.backend() == expected


def test_words_are_letters_and_digits_lowercased_and_bounded():
    assert search.query_terms("  Strea-ming, C++ & fsync!! ") == ["strea", "ming", "c", "fsync"]
    assert search.query_terms("a_b") == ["a", "b"]
    assert search.query_terms("x " * 50) == ["x"]
    assert len(search.query_terms(" ".join(f"w{i}" for i in range(20)))) == search.MAX_TERMS
    assert search.query_terms('"* OR NEAR( :* & !') == ["or", "near"]


def test_it_finds_message_text_by_word_prefix(owner):
    chat_with(owner, "First", "How does WAL mode work?", "It logs writes ahead.")
    chat_with(owner, "Second", "Tell me about streaming", "Tokens arrive one by one.")
    assert titles(search.conversations_search(owner=owner, query="strea")) == ["Second"]
    assert titles(search.conversations_search(owner=owner, query="WAL")) == ["First"]
    assert titles(search.conversations_search(owner=owner, query="ahead writes")) == ["First"]
    assert search.conversations_search(owner=owner, query="reaming") == []  # not a prefix
    assert search.conversations_search(owner=owner, query="ahead streaming") == []  # AND


def test_titles_match_anywhere_and_are_highlighted(owner):
    chat_with(owner, "Budget <2025> planning", "nothing here")
    (hit,) = search.conversations_search(owner=owner, query="planning")
    assert str(hit.title_html) == "Budget &lt;2025&gt; <mark>planning</mark>"
    assert hit.message_id is None and str(hit.snippet_html) == ""


def test_another_users_conversations_are_never_found(owner, outsider):
    chat_with(owner, "Mine", "kubernetes deployment")
    chat_with(outsider, "Theirs", "kubernetes secrets")
    chat_with(outsider, "Kubernetes title", "x")
    hits = search.conversations_search(owner=owner, query="kubernetes")
    assert titles(hits) == ["Mine"]
    assert search.conversations_search(owner=owner, query="secrets") == []


def test_results_are_pinned_first_then_most_recent(owner):
    older = chat_with(owner, "Older", "fsync matters")
    pinned = chat_with(owner, "Pinned", "fsync again")
    chat_with(owner, "Newest", "fsync once more")
    pinned.pinned = True
    pinned.save(update_fields=["pinned"])
    older.save()  # touched: now the most recent of the unpinned
    hits = search.conversations_search(owner=owner, query="fsync")
    assert titles(hits) == ["Pinned", "Older", "Newest"]


def test_the_snippet_is_escaped_with_the_match_marked(owner):
    chat_with(
        owner,
        "XSS",
        "look",
        "Some text first. <script>alert('x')</script> then <b>streaming</b> & more",
    )
    (hit,) = search.conversations_search(owner=owner, query="streaming")
    html = str(hit.snippet_html)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;<mark>streaming</mark>&lt;/b&gt; &amp; more" in html
    assert html.count("<mark>") == 1


def test_a_match_deep_in_a_long_message_shows_the_text_around_it(owner):
    long = ("filler " * 3000) + "the needle sits here " + ("tail " * 3000)
    conversation = chat_with(owner, "Long", "q", long)
    (hit,) = search.conversations_search(owner=owner, query="needle")
    html = str(hit.snippet_html)
    assert html.startswith("…") and html.endswith("…")
    assert "the <mark>needle</mark> sits here" in html
    assert len(html) < 300
    assert hit.message_id == conversation.messages.get(role="assistant").pk


def test_the_index_follows_edits_and_deletes(owner):
    conversation = chat_with(owner, "Edited", "original words", "answer")
    message = conversation.messages.get(role="user")
    assert titles(search.conversations_search(owner=owner, query="original")) == ["Edited"]
    message.content = "replacement text"
    message.save()
    assert search.conversations_search(owner=owner, query="original") == []
    assert titles(search.conversations_search(owner=owner, query="replacement")) == ["Edited"]
    Message.objects.filter(pk=message.pk).update(content="bulk updated")
    assert titles(search.conversations_search(owner=owner, query="bulk")) == ["Edited"]
    conversation.delete()
    assert search.conversations_search(owner=owner, query="bulk") == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 triggers")
def test_lost_fts_triggers_are_put_back_and_the_index_rebuilt(owner):
    """Django rebuilds a SQLite table for some schema changes, which drops its triggers."""
    chat_with(owner, "Before", "alpha words")
    with connection.cursor() as cursor:
        for trigger in search.FTS_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {trigger}")
    chat_with(owner, "During", "alpha written while the triggers were gone")
    assert titles(search.conversations_search(owner=owner, query="alpha written")) == ["During"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
            ["chat_message_fts_%"],
        )
        assert cursor.fetchone()[0] == 3


def test_the_fallback_finds_the_same_conversations(owner):
    chat_with(owner, "One", "Tell me about streaming")
    chat_with(owner, "Two", "kubernetes and streaming")
    indexed = titles(search.conversations_search(owner=owner, query="strea"))
    search.forced_backend = "scan"
    try:
        scanned = search.conversations_search(owner=owner, query="strea")
    finally:
        search.forced_backend = ""
    assert titles(scanned) == indexed == ["Two", "One"]
    assert "<mark>strea</mark>ming" in str(scanned[0].snippet_html)


def test_a_search_costs_a_constant_number_of_queries(owner):
    for i in range(40):
        chat_with(owner, f"Chat {i}", f"question {i} about fsync", "answer")
    with CaptureQueriesContext(connection) as few:
        search.conversations_search(owner=owner, query="fsync", limit=5)
    with CaptureQueriesContext(connection) as many:
        hits = search.conversations_search(owner=owner, query="fsync", limit=30)
    assert len(hits) == 30
    assert len(many) == len(few) <= 5


def test_too_short_queries_search_nothing(owner):
    chat_with(owner, "A", "a b c")
    assert search.conversations_search(owner=owner, query="a") == []
    assert search.conversations_search(owner=owner, query="  !! ") == []


# --------------------------------------------------------------------------- the view


def test_the_sidebar_search_answers_htmx_with_results(owner_client, owner):
    conversation = chat_with(owner, "Sidebar", "live filtering please")
    response = owner_client.get(
        reverse("chat:history_search"),
        {"q": "filter"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver/c/{conversation.pk}/",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<mark>filter</mark>ing" in html
    assert "<html" not in html  # a partial
    assert 'class="conv-hit active"' in html
    message = conversation.messages.get()
    # It opens at the message, with the words to highlight there.
    assert f'href="/c/{conversation.pk}/?q=filter#m-{message.pk}"' in html


def test_an_empty_search_shows_the_history_again(owner_client, owner):
    chat_with(owner, "Back to the list", "x")
    response = owner_client.get(
        reverse("chat:history_search"), {"q": ""}, headers={"HX-Request": "true"}
    )
    assert b"Back to the list" in response.content and b"conv-item" in response.content


def test_nothing_found_says_so_escaped(owner_client):
    response = owner_client.get(
        reverse("chat:history_search"), {"q": "<i>zzz"}, headers={"HX-Request": "true"}
    )
    assert "Nothing matches “&lt;i&gt;zzz”" in response.content.decode()


def test_without_javascript_the_search_is_a_page(owner_client, owner):
    chat_with(owner, "Plain", "no javascript here")
    response = owner_client.get(reverse("chat:history_search"), {"q": "javascript"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and "<mark>javascript</mark>" in html


def test_the_search_shows_only_the_users_own_conversations(owner_client, outsider):
    chat_with(outsider, "Secret plans", "the secret is here")
    response = owner_client.get(
        reverse("chat:history_search"), {"q": "secret"}, headers={"HX-Request": "true"}
    )
    assert b"Secret plans" not in response.content and b"Nothing matches" in response.content


@pytest.mark.parametrize("backend", ["", "scan"])
def test_a_conversation_without_messages_is_not_found_by_its_title(owner, backend):
    """As the sidebar and Export all: one opened only to set it up is listed nowhere."""
    chat_with(owner, "Setup notes")
    chat_with(owner, "Setup talk", "hello")
    search.forced_backend = backend
    try:
        assert titles(search.conversations_search(owner=owner, query="setup")) == ["Setup talk"]
    finally:
        search.forced_backend = ""
