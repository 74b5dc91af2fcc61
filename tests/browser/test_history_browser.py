"""The history sidebar, share links, import and the keyboard, in Chromium."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from chat.models import Conversation
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import answers, create_first_account, streaming_answer
from tests.integration.history_world import chat_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def ada():
    return get_user_model().objects.get(username="ada")


def item(page, conversation):
    return page.locator(f"#conv-{conversation.pk}")


def open_menu(page, conversation):
    row = item(page, conversation)
    row.hover()
    row.locator("summary").click()
    return row


def test_the_sidebar_search_filters_live_with_highlighted_snippets(app_server, page):
    create_first_account(page, app_server)
    wal = chat_with(ada(), "Databases", "How does WAL mode work?", "Writes go <b>ahead</b>.")
    chat_with(ada(), "Streams", "Tell me about streaming", "Tokens arrive one by one.")
    page.reload()
    assert page.locator(".conv-item").count() == 2

    box = page.get_by_label("Search conversations")
    box.press_sequentially("ahea", delay=40)
    hit = page.locator(".conv-hit")
    hit.first.locator("mark").wait_for()
    assert hit.count() == 1
    assert hit.first.locator(".hit-title").inner_text() == "Databases"
    snippet = hit.first.locator(".hit-snippet")
    assert snippet.locator("mark").inner_text() == "ahea"
    assert "<b>ahead</b>" in snippet.inner_text()  # the model's markup shown as text
    assert snippet.locator("b").count() == 0

    box.fill("")
    box.press("Backspace")  # an input event with the box empty: the history again
    page.locator(".conv-item").nth(1).wait_for()
    assert page.locator(".conv-hit").count() == 0

    box.press_sequentially("zzzq", delay=40)
    page.get_by_text("Nothing matches “zzzq”").wait_for()
    box.fill("")
    box.press_sequentially("wal", delay=40)
    page.locator(".conv-hit mark").first.wait_for()
    page.locator(".conv-hit").first.click()
    page.wait_for_url(re.compile(f"/c/{wal.pk}/"))
    assert not page.problems, page.problems


def test_rename_pin_and_delete_from_the_sidebar(app_server, page):
    create_first_account(page, app_server)
    older = chat_with(ada(), "Older chat", "q", "a")
    newer = chat_with(ada(), "Newer chat", "q", "a")
    page.goto(f"{app_server}/c/{older.pk}/")
    titles = page.locator(".conv-item .conv-link")
    assert titles.all_inner_texts() == ["Newer chat", "Older chat"]

    # Rename inline: the field comes focused, Enter saves, the page's heading follows.
    open_menu(page, older).get_by_text("Rename").click()
    field = page.locator(f"#rename-{older.pk}")
    field.wait_for()
    page.wait_for_function("id => document.activeElement.id === id", arg=f"rename-{older.pk}")
    field.fill("Renamed <chat>")
    field.press("Enter")
    item(page, older).locator(".conv-link").get_by_text("Renamed <chat>").wait_for()
    page.locator(".conv-title").get_by_text("Renamed <chat>").wait_for()
    assert page.title().startswith("Renamed <chat>")
    # Esc cancels a rename.
    open_menu(page, newer).get_by_text("Rename").click()
    page.locator(f"#rename-{newer.pk}").press("Escape")
    item(page, newer).locator(".conv-link").wait_for()
    assert Conversation.objects.get(pk=newer.pk).title == "Newer chat"

    # Pin: to the top, marked.
    open_menu(page, older).get_by_role("button", name="Pin to top").click()
    page.locator(".conv-item.pinned").wait_for()
    assert titles.all_inner_texts()[0].endswith("Renamed <chat>")
    assert Conversation.objects.get(pk=older.pk).pinned

    # Delete another conversation: confirmed, removed from the list, the page stays.
    page.once("dialog", lambda dialog: dialog.accept())
    open_menu(page, newer).get_by_role("button", name="Delete").click()
    item(page, newer).wait_for(state="detached")
    assert page.url.endswith(f"/c/{older.pk}/")
    assert not Conversation.objects.filter(pk=newer.pk).exists()
    # Dismissing the confirmation deletes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.evaluate(
        """() => { window.__requests = 0;
        document.addEventListener('htmx:beforeRequest', () => { window.__requests += 1; });
        document.addEventListener('submit', (e) => {
          if (!e.defaultPrevented) window.__requests += 1; }); }"""
    )
    open_menu(page, older).get_by_role("button", name="Delete").click()
    # The confirmation is answered inside the click's own handlers, so by the time the
    # click returns, a request it were to make would have started: none did.
    assert page.evaluate("window.__requests") == 0
    assert Conversation.objects.filter(pk=older.pk).exists()
    assert not page.problems, page.problems


def test_keyboard_shortcuts_and_the_send_key_setting(app_server, page):
    create_first_account(page, app_server)
    page.get_by_label("Message").fill("First message")
    page.get_by_label("Message").press("Enter")  # Enter sends by default
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()
    page.locator("form#composer:not([data-pending])").wait_for()  # the server's fresh form
    conversation_url = page.url

    # `?` (when not typing) opens the help, which lists the shortcuts and the setting.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    help_dialog.wait_for()
    assert "Ctrl/⌘+Shift+O" in help_dialog.inner_text().replace(" ", "")
    help_dialog.get_by_label(re.compile("Send with")).check()
    assert help_dialog.locator("[data-send-key-label]").inner_text() == "Ctrl/⌘+Enter"
    page.keyboard.press("Escape")
    help_dialog.wait_for(state="hidden")

    # `/` focuses the composer; now Enter is a new line and Ctrl+Enter sends. Once both
    # sockets are open no late swap can take the focus away again.
    expect(page.locator("[data-conversation]")).to_have_attribute("data-socket", "open")
    expect(page.locator("[data-sidebar-socket]")).to_have_attribute("data-socket", "open")
    focused = "() => document.activeElement.getAttribute('name') === 'content'"
    page.keyboard.press("/")
    page.wait_for_function(focused)
    composer = page.get_by_label("Message")
    composer.press_sequentially("line one")
    composer.press("Enter")
    composer.press_sequentially("line two")
    assert composer.input_value() == "line one\nline two"
    assert page.locator('[data-role="user"]').count() == 1
    composer.press("Control+Enter")
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    assert "line one\nline two" in page.locator('[data-role="user"]').nth(1).inner_text()

    # The setting is kept in this browser.
    page.reload()
    assert "Ctrl/⌘+Enter to send" in page.get_by_label("Message").get_attribute("placeholder")

    # Ctrl+Shift+R clicks the last regenerate button, instead of reloading the page.
    page.evaluate(
        """() => { window.__kept = true; window.__regenerated = 0;
        document.querySelectorAll('[data-regenerate]').forEach(b => b.addEventListener(
          'click', e => { e.preventDefault(); e.stopImmediatePropagation();
                          window.__regenerated += 1; }, true)); }"""
    )
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Control+Shift+R")
    page.wait_for_function("() => window.__regenerated > 0")
    assert page.evaluate("window.__kept === true && window.__regenerated") == 1

    # Ctrl+Shift+O opens a new conversation.
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(app_server + "/")
    assert page.url != conversation_url
    assert not page.problems, page.problems


def test_escape_stops_an_answer_even_outside_the_composer(app_server, page, fake_upstream_url):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    # Held after 10 tokens by a gate nobody opens: only Escape can end it.
    gate = Gate(fake_upstream_url)
    answer = streaming_answer(page, "Long one" + gate.script(tokens=200, hold_after=10), 4)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Escape")
    answer.and_(page.locator('[data-status="stopped"]')).wait_for()
    assert not page.problems, page.problems


def test_share_a_conversation_then_revoke_the_link(app_server, page, browser):
    create_first_account(page, app_server)
    conversation = chat_with(ada(), "Shared weather", "Is it **sunny**?", "Yes, *very*.")
    page.goto(f"{app_server}/c/{conversation.pk}/share/")
    page.get_by_role("button", name="Create a share link").click()
    link = page.get_by_label("Share link")
    link.wait_for()
    url = link.input_value()
    assert re.fullmatch(re.escape(app_server) + r"/s/[A-Za-z0-9_-]{32}/", url)

    stranger = browser.new_context()
    try:
        anonymous = stranger.new_page()
        errors: list[str] = []
        anonymous.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = anonymous.goto(url)
        assert response.status == 200
        assert anonymous.get_by_role("heading", name="Shared weather").is_visible()
        assert anonymous.locator('[data-role="assistant"] em').inner_text() == "very"
        assert "Is it **sunny**?" in anonymous.locator('[data-role="user"]').inner_text()
        assert anonymous.locator(".sidebar").count() == 0
        assert not errors, errors  # no CSP violation either

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke link").click()
        page.get_by_role("button", name="Create a share link").wait_for()
        assert anonymous.goto(url).status == 404
    finally:
        stranger.close()
    assert not page.problems, page.problems


def test_import_a_file_from_the_import_page(app_server, page):
    create_first_account(page, app_server)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Imported question"},
        {"role": "assistant", "content": "Imported **answer**"},
    ]
    page.goto(app_server + "/import/")
    page.get_by_label(re.compile("JSON file")).set_input_files(
        files=[{"name": "chat.json", "mimeType": "application/json",
                "buffer": json.dumps(messages).encode()}]
    )  # fmt: skip
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/$"))
    assert "Imported question" in page.locator('[data-role="user"]').inner_text()
    assert page.locator('[data-role="assistant"] strong').inner_text() == "answer"
    assert page.locator(".conv-item.active .conv-link").inner_text() == "Imported question"

    page.goto(app_server + "/import/")
    page.get_by_label(re.compile("paste JSON")).fill('[{"role": "robot"}]')
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Nothing was imported").wait_for()
    assert "[0].role: 'robot' is not one of" in page.locator(".import-errors").inner_text()
    # The refused import answers 400, which Chromium logs; nothing else may.
    assert [p for p in page.problems if "status of 400" not in p] == [], page.problems
