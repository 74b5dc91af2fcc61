"""The demo endpoint shows the product off without scripting: a question asking for a
table gets a table; a ``@fake`` line is taken out of the shown question, yet sent,
editable and inspectable as written."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = '@fake {"ttft_ms": 5}'


def test_a_table_question_gets_a_table_and_the_script_line_is_shown_apart(app_server, page):
    create_first_account(page, app_server)
    send_and_wait(page, f"Make a table of latency by region\n{SCRIPT}", 1)
    answer = answers(page).first
    expect(answer.locator(".msg-body table")).to_be_visible()
    expect(answer.locator(".msg-body table th").first).to_have_text("Option")

    question = page.locator('[data-role="user"]').first
    expect(question.locator(".msg-body")).to_have_text("Make a table of latency by region")
    note = question.locator(".demo-script")
    expect(note).to_contain_text("scripted for the demo endpoint")
    assert note.locator(".badge").get_attribute("title") == SCRIPT
    page.screenshot(path=str(ARTIFACTS / "demo-table.png"))

    # Edit starts from the question as written, the script line included.
    question.get_by_role("button", name="Edit this question").click()
    box = question.get_by_label("Edited text")
    expect(box).to_have_value(f"Make a table of latency by region\n{SCRIPT}")
    question.locator("[data-edit-cancel]").click()
    expect(box).to_have_count(0)

    # The request went out with it.
    answer.get_by_role("button", name="Inspect this answer").click()
    expect(page.locator("#modal-body")).to_contain_text('@fake {\\"ttft_ms\\": 5}')
    assert not page.problems, page.problems
