"""Parameters, tools and + Lane before the first message (issue 14, item 6), in Chromium:
the New page opens the conversation without sending, keeps what was typed, and the first
send then moves nothing."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_parameters_before_the_first_message_reach_its_request(app_server, page):
    create_first_account(page, app_server)
    typed = 'Typed before the panel\n@fake {"tokens": 5}'
    page.get_by_label("Message").fill(typed)
    page.get_by_role("button", name="Parameters").click()
    page.wait_for_url("**/c/*/?open=params")

    # The panel is there and focused, nothing was sent, what was typed waits in the composer.
    panel = page.locator("#params-panel")
    expect(panel).to_be_visible()
    expect(page.locator('[data-role="user"]')).to_have_count(0)
    expect(page.get_by_label("Message")).to_have_value(
        'Typed before the panel\n@fake {"tokens": 5}'
    )
    assert page.evaluate("document.activeElement.closest('#params-panel') !== null")
    page.screenshot(path=str(ARTIFACTS / "setup-first-params.png"))

    with page.expect_response(lambda r: r.url.endswith("/params/") and r.ok):
        page.locator("#param-temperature").fill("0.3")
        page.locator("#param-temperature").press("Tab")
    composer = page.locator("#composer").bounding_box()
    side = page.locator("#side-panel").bounding_box()
    page.get_by_role("button", name="Send", exact=True).click()
    first = answers(page).first
    first.and_(page.locator('[data-status="complete"]')).wait_for()

    # The first send moved neither the composer nor the panel.
    assert page.locator("#composer").bounding_box() == composer
    assert page.locator("#side-panel").bounding_box() == side
    first.get_by_role("button", name="Inspect this answer").click()
    body = json.loads(page.locator("#inspector-request").inner_text())
    assert body["temperature"] == 0.3
    assert not page.problems, page.problems


def test_tools_and_a_second_lane_before_the_first_message(app_server, page):
    create_first_account(page, app_server)
    page.get_by_role("button", name="Tools").click()
    page.wait_for_url("**/c/*/?open=tools")
    expect(page.locator("#tools-panel")).to_be_in_viewport()
    expect(page.locator('[data-role="user"]')).to_have_count(0)

    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("heading", name="New conversation").wait_for()
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    assert page.locator(".lane-badge").all_inner_texts() == ["A", "B"]
    expect(page.locator('[data-role="user"]')).to_have_count(0)
    page.get_by_label("Message").fill('Both lanes\n@fake {"tokens": 4}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-1 .lane-cell")
    for index in (0, 1):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    assert not page.problems, page.problems


def test_an_empty_message_still_needs_typing_to_send(app_server, page):
    """The setup buttons skip the message; Send does not."""
    create_first_account(page, app_server)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="New conversation")).to_be_visible()
    assert page.evaluate("document.querySelector('#id_content').validity.valueMissing")


def test_on_a_phone_parameters_open_as_the_sheet(app_server, page):
    page.set_viewport_size({"width": 390, "height": 844})
    create_first_account(page, app_server)
    page.get_by_role("button", name="Parameters").click()
    page.wait_for_url("**/c/*/?open=params")
    expect(page.locator(".conv-grid.sheet-open")).to_have_count(1)
    expect(page.locator("#params-panel")).to_be_in_viewport()
    page.screenshot(path=str(ARTIFACTS / "setup-first-phone.png"))
    page.keyboard.press("Escape")
    expect(page.locator(".conv-grid.sheet-open")).to_have_count(0)
    assert not page.problems, page.problems
