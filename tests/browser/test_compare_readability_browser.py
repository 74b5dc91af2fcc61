"""In Chromium: lane heads show their parameters as chips that follow the panel, and blind
mode hides speed, usage and lane parameters until the vote, then shows them."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_chips_follow_the_panel_and_blind_hides_the_tells_until_the_vote(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    send_and_wait(page, "Warm up", 1)
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    heads = page.locator(".lane-head")
    assert heads.nth(1).locator(".chip-param").count() == 0

    with page.expect_response(lambda r: "/params/panel" in r.url):
        page.locator("#panel-lane-select").select_option(index=1)
    page.locator("#params-panel #param-temperature").wait_for()
    page.locator("#param-temperature").fill("0.3")
    page.locator("#param-temperature").press("Tab")
    page.locator("#params-status").get_by_text("Saved").wait_for()
    b_chip = heads.nth(1).locator(".chip-param.differs")
    b_chip.wait_for()
    assert b_chip.inner_text() == "temp 0.3"
    assert heads.nth(0).locator(".chip-param.differs").inner_text() == "temp default"

    send_and_wait(page, 'Compare\n@fake {"tokens": 12}', 2)
    metrics = page.locator("#turn-2 .metrics")
    assert "TTFT" in metrics.first.inner_text()

    page.get_by_role("button", name="Blind").click()
    page.get_by_role("button", name="Blind: on").wait_for()
    assert page.locator(".chip-param").count() == 0
    assert page.locator("#params-blind").is_visible()
    send_and_wait(page, 'Again\n@fake {"tokens": 12}', 3)
    turn = page.locator("#turn-3")
    assert "TTFT" not in turn.inner_text() and "tok/s" not in turn.inner_text()
    assert turn.get_by_text("shown after your vote").count() == 3
    page.screenshot(path=str(ARTIFACTS / "blind-before-vote.png"))
    turn.get_by_role("button", name="A is better").click()
    turn.get_by_text("Voted: A better").wait_for()
    page.reload()
    assert "TTFT" in page.locator("#turn-3").inner_text()
    assert not page.problems, page.problems
