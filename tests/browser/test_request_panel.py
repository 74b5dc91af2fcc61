"""The parameter panel in Chromium: a slider moved is what the next request sends."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_chat_flow import answers, create_first_account, first_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_moved_slider_reaches_the_request_shown_in_the_inspector(app_server, page):
    create_first_account(page, app_server)
    first_answer(page, "First message")

    temperature = page.get_by_label("Temperature slider")
    assert page.locator("#param-temperature").input_value() == ""  # untouched: not sent
    temperature.fill("0.35")  # moves the range input and fires input + change
    page.get_by_text("Saved", exact=True).wait_for()
    assert page.locator("#param-temperature").input_value() == "0.35"

    page.get_by_label("Message").fill("Second message")
    page.get_by_role("button", name="Send").click()
    second = answers(page).nth(1)
    second.and_(page.locator('[data-status="complete"]')).wait_for()
    second.get_by_role("button", name="Inspect this answer").click()
    body = json.loads(page.locator("#inspector-request").inner_text())
    assert body["temperature"] == 0.35
    assert "top_p" not in body  # never touched, never sent
    page.get_by_role("button", name="Close").click()

    # The first answer's request had no temperature at all.
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    first_body = json.loads(page.locator("#inspector-request").inner_text())
    assert "temperature" not in first_body
    page.get_by_role("button", name="Close").click()

    # Reset: the value is no longer sent.
    page.locator("[data-param]").filter(has=page.locator("#param-temperature")).get_by_role(
        "button", name="Reset Temperature"
    ).click()
    page.get_by_text("Saved", exact=True).wait_for()
    assert page.locator("#param-temperature").input_value() == ""

    # A bad value is refused inline and nothing is sent.
    page.locator("#param-top_p").fill("7")
    page.locator("#param-top_p").press("Tab")
    page.locator("#error-top_p").get_by_text("must be at most 1").wait_for()
    page.get_by_label("Message").fill("Third message")
    page.get_by_role("button", name="Send").click()
    page.locator("#composer-error").get_by_text("Fix the parameters first").wait_for()
    assert page.get_by_label("Message").input_value() == "Third message"
    assert answers(page).count() == 2
    assert not page.problems, page.problems
