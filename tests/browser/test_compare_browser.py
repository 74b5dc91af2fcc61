"""A comparison in Chromium: three lanes, one stopped mid-stream, the others finish;
and how a four-lane comparison looks on a desktop and on a phone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_lane(page, count: int) -> None:
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(count - 1).wait_for()


def test_three_lanes_stop_one_the_others_complete(app_server, page):
    create_first_account(page, app_server)
    page.get_by_label("Message").fill("Warm up")
    page.get_by_role("button", name="Send").click()
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()
    add_lane(page, 2)
    add_lane(page, 3)
    assert page.locator(".lane-badge").all_inner_texts() == ["A", "B", "C"]

    page.get_by_label("Message").fill('Race\n@fake {"tokens": 80, "tps": 20}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    cells.nth(2).locator('[data-status="streaming"]').wait_for()
    page.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 8",
        arg=cells.nth(1).locator(".msg-body").element_handle(),
    )
    cells.nth(1).get_by_role("button", name="Stop this answer").click()
    cells.nth(1).locator('[data-status="stopped"]').wait_for()
    for index in (0, 2):
        cells.nth(index).locator('[data-status="complete"]').wait_for(timeout=20_000)
    assert cells.nth(1).locator('[data-status="stopped"]').count() == 1
    summary = page.locator("#summary-2")
    summary.get_by_text("stop").first.wait_for()
    assert "TTFT" in summary.inner_text()
    # the lanes finished one by one, independently: each cell has its own final answer
    assert [c.locator("[data-status]").first.get_attribute("data-status") for c in cells.all()] == [
        "complete",
        "stopped",
        "complete",
    ]
    assert not page.problems, page.problems


def test_a_four_lane_comparison_looks_clean_at_1440_and_390(app_server, page):
    create_first_account(page, app_server)
    page.get_by_label("Message").fill("First")
    page.get_by_role("button", name="Send").click()
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()
    for count in (2, 3, 4):
        add_lane(page, count)
    models = ["demo", "demo-fast", "demo", "demo-fast"]
    for index, model in enumerate(models[1:], start=1):
        field = page.get_by_label(f"Model {'ABCD'[index]}")
        field.fill(model)
        field.press("Tab")
    page.get_by_label("Message").fill("Compare these answers on caching strategies")
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    for index in range(4):
        cells.nth(index).locator('[data-status="complete"]').wait_for(timeout=20_000)
    page.locator("#summary-2 td.best").first.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-1440-panel.png"))
    page.get_by_role("button", name="Panel").click()  # more room for the lanes
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-1440.png"))
    cells_js = "[...document.querySelectorAll('#turn-2 .lane-cell')]"
    widths = page.evaluate(f"{cells_js}.map(c => c.getBoundingClientRect().width)")
    assert len(widths) == 4 and min(widths) > 150  # four real columns side by side
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-390.png"))
    boxes = page.evaluate(f"{cells_js}.map(c => c.getBoundingClientRect().left)")
    assert len({round(x) for x in boxes}) == 1  # stacked on a phone
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert not page.problems, page.problems
