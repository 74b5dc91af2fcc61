"""A comparison in Chromium: three lanes, one stopped mid-stream, the others finish;
and how a four-lane comparison looks on a desktop and on a phone."""

from __future__ import annotations

from itertools import pairwise

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import create_first_account, first_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_lane(page, count: int) -> None:
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(count - 1).wait_for()


def test_three_lanes_stop_one_the_others_complete(app_server, page, fake_upstream_url):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    first_answer(page, "Warm up")
    add_lane(page, 2)
    add_lane(page, 3)
    assert page.locator(".lane-badge").all_inner_texts() == ["A", "B", "C"]

    # Every lane holds after 20 tokens until the gate opens: B is stopped while A and C
    # are certainly still streaming, then they finish on their own.
    gate = Gate(fake_upstream_url)
    page.get_by_label("Message").fill("Race" + gate.script(tokens=80, tps=20, hold_after=20))
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
        assert cells.nth(index).locator('[data-status="streaming"]').count() == 1
    gate.open()
    for index in (0, 2):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
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


CELLS = "[...document.querySelectorAll('#turn-2 .lane-cell')]"


def layout_facts(page) -> dict:
    """Where the four answer cells and lane heads are, and whether anything makes the
    page (or a cell) scroll sideways."""
    return page.evaluate(
        f"""() => {{
        const box = el => {{ const r = el.getBoundingClientRect();
            return {{left: r.left, top: r.top, right: r.right, width: r.width}}; }};
        const heads = [...document.querySelectorAll('.lane-head')];
        return {{
            cells: {CELLS}.map(box),
            heads: heads.map(box),
            viewport: innerWidth,
            pageOverflow: document.documentElement.scrollWidth - innerWidth,
            cellOverflow: {CELLS}.map(c => c.scrollWidth - c.clientWidth),
            headOverflow: heads.map(h => h.scrollWidth - h.clientWidth),
            summaryOverflow: (el => el.scrollWidth - el.clientWidth)(
                document.querySelector('#summary-2')),
        }};
    }}"""
    )


def menu_opens_on_screen(page, lane: str) -> None:
    """A lane's ⋯ menu opens whole and clickable (not clipped by the lane heads' own
    scrolling), and closes on a click elsewhere."""
    page.locator(".lane-menu > summary").filter(has_text=f"Actions for lane {lane}").click()
    clone = page.get_by_role("button", name=f"Duplicate lane {lane}")
    clone.wait_for()
    box = clone.bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, box
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).getAttribute('aria-label')",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top == f"Duplicate lane {lane}"
    page.locator("#turn-2 .msg-user .msg-body").click()
    clone.wait_for(state="hidden")


def show_top_of_turn(page) -> None:
    """Scroll the messages (only them: the page stays put) to the top of turn 2."""
    page.evaluate(
        """() => { const m = document.getElementById('messages');
        const turn = document.getElementById('turn-2');
        m.scrollTop += turn.getBoundingClientRect().top - m.getBoundingClientRect().top - 8; }"""
    )


def test_a_four_lane_comparison_looks_clean_at_1440_and_390(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    first_answer(page, "First")
    for count in (2, 3, 4):
        add_lane(page, count)
    # One unpaced lane among paced ones, so that one lane wins a row of the summary clearly
    # (a win by less than 5 % is not marked): B beats the fake's 150 ms to the first token
    # and 60 tokens a second. Two demo-fast lanes tied with each other under load: no best
    # cell in 60 s (flake hunt), as nothing but noise told them apart.
    models = ["demo", "demo-fast", "demo", "demo"]
    for index, model in enumerate(models[1:], start=1):
        field = page.get_by_label(f"Model {'ABCD'[index]}")
        field.fill(model)
        field.press("Tab")
        if model != "demo":  # an unchanged field posts nothing
            page.locator(".lane-head").nth(index).get_by_text("Saved").wait_for()
    page.get_by_label("Message").fill("Compare these answers on caching strategies")
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    for index in range(4):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    page.locator("#summary-2 td.best").first.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)

    # 1440 px, parameter panel open (the default): four columns in one row.
    assert page.evaluate("innerWidth") == 1440
    show_top_of_turn(page)
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-1440.png"))
    facts = layout_facts(page)
    tops = {round(c["top"]) for c in facts["cells"]}
    lefts = [c["left"] for c in facts["cells"]]
    assert len(tops) == 1, facts  # side by side
    assert lefts == sorted(lefts) and len({round(x) for x in lefts}) == 4, facts
    assert min(c["width"] for c in facts["cells"]) > 180, facts
    assert all(a["right"] <= b["left"] for a, b in pairwise(facts["cells"])), facts
    assert facts["pageOverflow"] <= 0, facts
    assert max(facts["cellOverflow"] + facts["headOverflow"]) <= 0, facts
    assert facts["summaryOverflow"] <= 0, facts  # the summary table fits: no sideways scroll
    heads = facts["heads"]
    assert [round(h["left"]) for h in heads] == [round(c["left"]) for c in facts["cells"]], facts

    menu_opens_on_screen(page, "D")

    # More room for the lanes with the panel hidden.
    page.get_by_role("button", name="Panel").click()
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-1440-no-panel.png"))
    wide = layout_facts(page)
    assert min(c["width"] for c in wide["cells"]) > min(c["width"] for c in facts["cells"])
    assert wide["pageOverflow"] <= 0 and wide["summaryOverflow"] <= 0, wide
    page.get_by_role("button", name="Panel").click()

    # 390 px (a phone): one column, lanes stacked in order, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    show_top_of_turn(page)
    page.screenshot(path=str(ARTIFACTS / "compare-4-lanes-390.png"))
    facts = layout_facts(page)
    assert len({round(c["left"]) for c in facts["cells"]}) == 1, facts
    tops = [c["top"] for c in facts["cells"]]
    assert tops == sorted(tops) and len(set(tops)) == 4, facts  # A above B above C above D
    assert all(c["width"] > 300 for c in facts["cells"]), facts  # full width, not squeezed
    assert all(c["right"] <= facts["viewport"] for c in facts["cells"]), facts
    assert len({round(h["left"]) for h in facts["heads"]}) == 1, facts
    assert facts["pageOverflow"] <= 0, facts
    assert max(facts["cellOverflow"] + facts["headOverflow"]) <= 0, facts
    menu_opens_on_screen(page, "B")
    # Each stacked answer says which lane it is.
    labels = page.evaluate(f"{CELLS}.map(c => getComputedStyle(c, '::before').content)")
    assert labels == ['"A"', '"B"', '"C"', '"D"'], labels
    assert not page.problems, page.problems


def test_sync_toggles_make_a_change_apply_to_every_lane(app_server, page):
    create_first_account(page, app_server)
    first_answer(page, "Warm up")
    add_lane(page, 2)
    add_lane(page, 3)
    # endpoint + model: with the toggle, a model picked in lane A is every lane's model
    page.get_by_label("same endpoint and model in every lane").check()
    page.get_by_label("Model A").fill("demo-fast")
    page.get_by_label("Model A").press("Tab")
    for lane in "BC":  # their heads are replaced by the response, out of band
        expect(page.get_by_label(f"Model {lane}")).to_have_value("demo-fast")
    page.get_by_label("same endpoint and model in every lane").uncheck()
    page.get_by_label("Model C").fill("demo")
    page.get_by_label("Model C").press("Tab")
    page.locator(".lane-head").nth(2).get_by_text("Saved").wait_for()
    assert [page.get_by_label(f"Model {lane}").input_value() for lane in "ABC"] == [
        "demo-fast", "demo-fast", "demo"
    ]  # fmt: skip

    # parameters: "apply to all lanes" in the panel
    page.get_by_label("apply to all lanes").check()
    page.locator("#param-temperature").fill("0.3")
    page.locator("#param-temperature").press("Tab")
    page.locator("#params-status").get_by_text("Saved").wait_for()
    page.locator("#panel-lane-select").select_option(label="C · demo")
    expect(page.locator("#param-temperature")).to_have_value("0.3")  # C's own values now

    page.get_by_label("Message").fill('Hi\n@fake {"tokens": 4}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    for index in range(3):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    heads = [cells.nth(i).locator(".msg-head .who").inner_text() for i in range(3)]
    assert heads == ["demo-fast", "demo-fast", "demo"]
    cells.nth(1).get_by_role("button", name="Inspect this answer").click()
    request = page.locator("#inspector-request")
    request.wait_for()
    assert '"temperature": 0.3' in request.inner_text()
    assert '"model": "demo-fast"' in request.inner_text()
    assert not page.problems, page.problems
