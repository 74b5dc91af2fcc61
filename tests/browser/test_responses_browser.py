"""One model on Chat Completions and on the Responses API side by side, in Chromium: the
lane's API picker, streamed turns on both, usage shown, Stop on the Responses lane, and
the panel offering each API's own parameters."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import create_first_account, first_answer
from tests.browser.test_compare_browser import add_lane

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lane_on_the_responses_api_beside_a_lane_on_chat(app_server, page, fake_upstream_url):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    first_answer(page, "Warm up")
    add_lane(page, 2)
    page.get_by_label("API B").select_option("responses")
    page.locator(".lane-head").nth(1).get_by_text("Saved").wait_for()

    # The panel offers each lane its API's parameters: Responses has no seed, and chat
    # has no conversation state.
    panel_lane = page.locator("#panel-lane-select")
    panel_lane.select_option(label="B · demo")
    expect(page.get_by_label("Conversation state", exact=True)).to_be_visible()
    expect(page.get_by_label("Seed", exact=True)).to_have_count(0)
    panel_lane.select_option(label="A · demo")
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()
    expect(page.get_by_label("Conversation state", exact=True)).to_have_count(0)

    for turn, text in enumerate(["What is a lighthouse?", "And a lightship?"], start=2):
        page.get_by_label("Message").fill(text)
        page.get_by_role("button", name="Send", exact=True).click()
        cells = page.locator(f"#turn-{turn} .lane-cell")
        for index in (0, 1):
            cells.nth(index).locator('[data-status="complete"]').wait_for()
        chat, responses = cells.nth(0), cells.nth(1)
        expect(responses.locator(".metrics")).to_contain_text("Responses")
        expect(chat.locator(".metrics")).not_to_contain_text("Responses")
        for cell in (chat, responses):
            expect(cell.locator(".metrics")).to_contain_text("tokens")
            assert len(cell.locator(".msg-body").inner_text().split()) > 5

    # Stop on the Responses lane mid-stream: its text so far stays, the chat lane finishes.
    gate = Gate(fake_upstream_url)
    page.get_by_label("Message").fill("Race" + gate.script(tokens=80, tps=20, hold_after=15))
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-4 .lane-cell")
    page.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 8",
        arg=cells.nth(1).locator(".msg-body").element_handle(),
    )
    cells.nth(1).get_by_role("button", name="Stop this answer").click()
    cells.nth(1).locator('[data-status="stopped"]').wait_for()
    gate.open()
    cells.nth(0).locator('[data-status="complete"]').wait_for()
    assert len(cells.nth(1).locator(".msg-body").inner_text().split()) > 8

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "responses-beside-chat-1440.png"))
    page.reload()
    expect(page.get_by_label("API B")).to_have_value("responses")
    expect(
        page.locator("#turn-4 .lane-cell").nth(1).locator('[data-status="stopped"]')
    ).to_have_count(1)
    assert not page.problems, page.problems


def test_switching_a_lanes_api_brings_that_apis_parameters_into_the_panel(app_server, page):
    """No reload: the panel showing the lane follows its API at once, and saving a
    Responses-only parameter then works (no out-of-band target missing)."""
    create_first_account(page, app_server)
    first_answer(page, "Warm up")
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()
    page.get_by_label("API", exact=True).select_option("responses")
    expect(page.get_by_label("Conversation state", exact=True)).to_be_visible()
    expect(page.get_by_label("Seed", exact=True)).to_have_count(0)
    with page.expect_response(lambda r: r.url.endswith("/params/") and r.ok):
        page.get_by_label("Conversation state", exact=True).select_option("chained")
    page.locator("#params-status").get_by_text("Saved").wait_for()
    page.get_by_label("Message").fill("Second")
    page.get_by_role("button", name="Send", exact=True).click()
    second = page.locator('[data-role="assistant"]').nth(1)
    second.and_(page.locator('[data-status="complete"]')).wait_for()
    expect(second.locator(".metrics")).to_contain_text("Responses")
    page.get_by_label("API", exact=True).select_option("chat")
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()
    assert not page.problems, page.problems
