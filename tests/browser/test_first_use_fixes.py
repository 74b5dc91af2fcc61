"""First-use journeys of issue 12, in Chromium: each test is one defect a new user hit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_flow import answers, create_first_account

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
