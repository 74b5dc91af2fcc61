"""Titles and search snippets read as words (no markdown syntax, no demo scripting line),
and a search hit opens its conversation at the message, marked, its words highlighted."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from chat.models import Conversation
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account
from tests.integration.history_world import chat_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_scripted_markdown_question_gets_a_plain_title(app_server, page):
    create_first_account(page, app_server)
    send_and_wait(page, '**Why** is `WAL` faster?\n@fake {"tokens": 5}', 1)
    title = page.locator(".conv-title").inner_text()
    assert title == "Why is WAL faster?"
    assert page.locator(".conv-item .conv-link").first.inner_text() == "Why is WAL faster?"
    assert Conversation.objects.get().title == "Why is WAL faster?"


def test_a_search_hit_opens_at_the_message_with_its_words_highlighted(app_server, page):
    create_first_account(page, app_server)
    ada = get_user_model().objects.get(username="ada")
    texts = []
    for turn in range(1, 16):
        texts.append(f"Question {turn}: " + "tell me more. " * 20)
        answer = "Filler paragraph. " * 30
        if turn == 3:
            answer = "The **checkpoint** moves pages back into the main database file."
        texts.append(answer)
    conversation = chat_with(ada, "A long chat", *texts)
    target = conversation.messages.get(turn=3, role="assistant")
    page.reload()
    box = page.get_by_label("Search conversations")
    box.press_sequentially("checkpoint", delay=30)
    hit = page.locator(".conv-hit").first
    hit.locator("mark").wait_for()
    snippet = hit.locator(".hit-snippet").inner_text()
    assert "**" not in snippet and "checkpoint moves pages" in snippet
    hit.click()
    page.wait_for_url(f"**/c/{conversation.pk}/?q=checkpoint#m-{target.pk}")
    message = page.locator(f"#m-{target.pk}")
    message.and_(page.locator(".found")).wait_for()
    # In view inside the scrolling list (not scrolled to the end, where it would be far off).
    shown = page.evaluate(
        """id => { const m = document.getElementById('messages').getBoundingClientRect();
        const r = document.getElementById(id).getBoundingClientRect();
        return r.top >= m.top - 1 && r.bottom <= m.bottom + 1; }""",
        f"m-{target.pk}",
    )
    assert shown
    highlighted = page.evaluate(
        "() => [...CSS.highlights.get('search-hit')].map(r => r.toString())"
    )
    assert highlighted == ["checkpoint"]
    assert not page.evaluate("document.activeElement.id === 'composer-input'")
    assert not page.problems, page.problems
