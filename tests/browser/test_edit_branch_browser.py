"""Edit a sent message, regenerate an earlier answer and delete one, in Chromium."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def send(page, text: str, number: int) -> None:
    page.get_by_role("textbox", name="Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    answers(page).nth(number - 1).and_(page.locator('[data-status="complete"]')).wait_for()


def test_edit_regenerate_and_delete(app_server, page):
    ARTIFACTS.mkdir(exist_ok=True)
    create_first_account(page, app_server)
    send(page, "First question", 1)
    send(page, "Second question", 2)
    send(page, "Third question", 3)

    # Regenerate the second answer: it gets a version switcher; later turns stay.
    answers(page).nth(1).get_by_role("button", name="Regenerate this answer").click()
    page.locator("#turn-2 .versions").get_by_text("2/2").wait_for()
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    assert page.locator('[data-role="user"]').count() == 3

    # Edit the second question: turns 2 and 3 are replaced by the new turn 2.
    user = page.locator('[data-role="user"]').nth(1)
    user.get_by_role("button", name="Edit this question").click()
    box = user.get_by_label("Edited text")
    assert box.input_value() == "Second question"
    box.fill("Second question, rephrased")
    page.screenshot(path=str(ARTIFACTS / "edit-message.png"), full_page=True)
    box.press("Enter")
    page.get_by_role("alert").get_by_role("link").wait_for()
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    assert page.locator('[data-role="user"]').count() == 2
    assert "Second question, rephrased" in page.locator('[data-role="user"]').nth(1).inner_text()
    assert "Third question" not in page.locator("#messages").inner_text()

    # Delete the first answer (after the confirm): the question stays.
    page.once("dialog", lambda dialog: dialog.accept())
    answers(page).first.get_by_role("button", name="Delete this answer").click()
    page.wait_for_function("() => document.querySelectorAll('[data-role=assistant]').length === 1")
    assert page.locator('[data-role="user"]').count() == 2

    # The branch kept everything the edit replaced.
    page.get_by_role("alert").get_by_role("link").click()
    page.wait_for_url("**/c/**")
    text = page.locator("#messages").inner_text()
    assert "Third question" in text and "Second question" in text
    assert page.locator('[data-role="user"]').count() == 3
    page.screenshot(path=str(ARTIFACTS / "edit-branch.png"), full_page=True)
    assert not page.problems, page.problems
