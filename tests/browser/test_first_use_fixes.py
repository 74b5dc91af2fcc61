"""First-use journeys of issue 12, in Chromium: each test is one defect a new user hit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_flow import answers, create_first_account
from tests.browser.test_compare_browser import add_lane

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def first_answer(page, text: str = 'Hello\n@fake {"tokens": 6}') -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()


def test_lane_sweep_opens_its_dialog_and_the_other_dialogs_still_open(app_server, page):
    create_first_account(page, app_server)
    first_answer(page)
    page.locator(".lane-menu > summary").click()
    page.get_by_role("button", name="Sweep…").click()
    dialog = page.locator("#modal")
    expect(dialog.get_by_role("heading", name="Sweep from lane A")).to_be_visible()
    assert page.locator("#modal-body").count() == 1  # the dialog's body is still there
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # Inspect (and the others sharing the dialog) still open afterwards, without a reload.
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    expect(page.locator("#inspector-request")).to_be_visible()
    assert '"model": "demo"' in page.locator("#inspector-request").inner_text()
    assert not page.problems, page.problems


def test_a_blind_vote_right_after_the_answers_finish_is_counted(app_server, page):
    """The vote form arrives over the socket, rendered without a request (so without a
    CSRF token in it): voting from it must still pass the CSRF check."""
    create_first_account(page, app_server)
    first_answer(page)
    add_lane(page, 2)
    page.get_by_role("button", name="Blind").click()
    page.get_by_role("button", name="Blind: on").wait_for()
    page.get_by_label("Message").fill('Which is better?\n@fake {"tokens": 8}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    for index in range(2):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    summary = page.locator("#summary-2")
    summary.get_by_role("button", name="A is better").click()  # the live-rendered form
    summary.get_by_text("Voted").wait_for()
    assert "CSRF verification failed" not in page.content()
    page.get_by_role("link", name="Leaderboard").click()
    expect(page.get_by_role("cell", name="Demo (offline) · demo").first).to_be_visible()
    assert not page.problems, page.problems
