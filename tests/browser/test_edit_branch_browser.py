"""Edit a sent message (a new version, ‹ 1/2 ›), regenerate an earlier answer and delete
one, in Chromium; and the sidebar of a second page following the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers, create_first_account, first_answer
from tests.browser.test_resume_browser import new_tab

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def send(page, text: str, number: int) -> None:
    page.get_by_role("textbox", name="Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    answers(page).nth(number - 1).and_(page.locator('[data-status="complete"]')).wait_for()


def questions(page) -> list[str]:
    return [
        " ".join(t.split()) for t in page.locator('[data-role="user"] .msg-body').all_inner_texts()
    ]


def test_edit_makes_a_version_and_the_old_one_stays_reachable(app_server, page):
    ARTIFACTS.mkdir(exist_ok=True)
    create_first_account(page, app_server)
    send(page, "First question", 1)
    send(page, "Second question", 2)
    send(page, "Third question", 3)

    # Regenerate the second answer: it gets a version switcher; later turns stay.
    answers(page).nth(1).get_by_role("button", name="Regenerate this answer").click()
    page.locator("#turn-2 .lane-cell .versions").get_by_text("2/2").wait_for()
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    assert page.locator('[data-role="user"]').count() == 3

    # Edit the second question: turns 2 and 3 give way to the new turn 2, version 2/2.
    user = page.locator('[data-role="user"]').nth(1)
    user.get_by_role("button", name="Edit this question").click()
    box = user.get_by_label("Edited text")
    assert box.input_value() == "Second question"
    box.fill("Second question, rephrased")
    page.screenshot(path=str(ARTIFACTS / "edit-message.png"), full_page=True, caret="initial")
    box.press("Enter")
    versions = page.get_by_role("navigation", name="Versions of this question")
    versions.get_by_text("2/2").wait_for()
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    assert questions(page) == ["First question", "Second question, rephrased"]
    assert "Third question" not in page.locator("#messages").inner_text()
    assert page.get_by_role("link", name="(before edit)").count() == 0
    page.screenshot(path=str(ARTIFACTS / "edit-version-2.png"), full_page=True, caret="initial")
    assert page.get_by_role("button", name="Next version of this question").is_disabled()

    # A second tab on the conversation, to see it follow the switch.
    second = new_tab(page.context)
    second.goto(page.url)
    second.get_by_role("navigation", name="Versions of this question").get_by_text("2/2").wait_for()
    expect(second.locator("[data-conversation]")).to_have_attribute("data-socket", "open")

    # Back to version 1, from the keyboard: the old answers and the later turn return,
    # the regenerated answer still at its second try.
    url = page.url
    page.evaluate("() => { window.notReloaded = true; }")
    previous = page.get_by_role("button", name="Previous version of this question")
    previous.focus()
    page.keyboard.press("Enter")
    versions.get_by_text("1/2").wait_for()
    assert questions(page) == ["First question", "Second question", "Third question"]
    page.locator("#turn-2 .lane-cell .versions").get_by_text("2/2").wait_for()
    assert page.url == url and page.evaluate("() => window.notReloaded")  # no reload
    second.get_by_role("navigation", name="Versions of this question").get_by_text("1/2").wait_for()
    assert questions(second) == questions(page)
    second.close()
    page.screenshot(path=str(ARTIFACTS / "edit-version-1.png"), full_page=True, caret="initial")

    # The composer continues version 1: a fourth turn after the third.
    send(page, "Fourth question, in version 1", 4)
    assert questions(page)[-1] == "Fourth question, in version 1"
    page.reload()
    page.get_by_role("navigation", name="Versions of this question").get_by_text("1/2").wait_for()
    assert len(questions(page)) == 4

    # Delete the first answer (after the confirm): the question stays.
    page.once("dialog", lambda dialog: dialog.accept())
    answers(page).first.get_by_role("button", name="Delete this answer").click()
    page.wait_for_function("() => document.querySelectorAll('[data-role=assistant]').length === 3")
    assert len(questions(page)) == 4

    # The export carries both versions of the second question.
    page.get_by_text("Export / Share").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    conversation = data["conversations"][0]
    texts = {m["content"] for m in conversation["messages"] if m["role"] == "user"}
    assert {
        "Second question",
        "Second question, rephrased",
        "Fourth question, in version 1",
    } <= texts
    assert conversation["versions"]["branches"] == {"1": [0, 2]}
    assert not page.problems, page.problems
    assert not second.problems, second.problems


def test_the_sidebar_of_another_page_follows_new_renamed_and_deleted_conversations(
    app_server, page
):
    create_first_account(page, app_server)
    send(page, "A conversation to watch", 1)
    other = new_tab(page.context)
    other.goto(app_server + "/")
    sidebar = other.locator("#conv-list")
    sidebar.get_by_role("link", name="A conversation to watch").wait_for()
    expect(other.locator("[data-sidebar-socket]")).to_have_attribute("data-socket", "open")

    # Created in the first page: the other page's list shows it without a reload.
    page.get_by_role("button", name="New conversation").click()
    first_answer(page, "Brand new one")
    sidebar.get_by_role("link", name="Brand new one").wait_for()

    # Renamed in the first page's sidebar.
    item = page.locator(".conv-item").filter(has_text="Brand new one")
    item.locator("summary").click()
    item.get_by_role("link", name="Rename").click()
    rename = page.get_by_label("New title for Brand new one")
    rename.fill("Renamed in tab one")
    rename.press("Enter")
    sidebar.get_by_role("link", name="Renamed in tab one").wait_for()
    assert sidebar.get_by_role("link", name="Brand new one").count() == 0
    other.screenshot(
        path=str(ARTIFACTS / "sidebar-live-other-page.png"), full_page=True, caret="initial"
    )

    # Deleted in the first page: gone from the other.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".conv-actions").get_by_role("button", name="Delete").click()
    page.wait_for_url(app_server + "/")
    sidebar.get_by_role("link", name="Renamed in tab one").wait_for(state="detached")
    assert sidebar.get_by_role("link", name="A conversation to watch").count() == 1
    assert not page.problems, page.problems
    assert not other.problems, other.problems
