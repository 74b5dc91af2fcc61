"""In Chromium: the comparison summary marks only clear wins (by more than 5 %) and shows
no "…" for a lane that did not answer; the leaderboard ranks one model under two settings
as two rows, from votes cast on the page."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from chat.compare.ratings import fit
from chat.models import Message
from tests.browser.conftest import ARTIFACTS
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account
from tests.browser.test_compare_browser import add_lane
from tests.browser.test_resume_browser import use_local_fake

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def set_lane_param(page, lane: int, name: str, value: str) -> None:
    """Set one parameter of one lane in the side panel and wait until it is saved."""
    with page.expect_response(lambda r: "/params/panel" in r.url):
        page.locator("#panel-lane-select").select_option(index=lane)
    field = page.locator(f"#params-panel #param-{name}")
    field.wait_for()
    field.fill(value)
    field.press("Tab")
    page.locator("#params-status").get_by_text("Saved").wait_for()


def set_model(page, lane: str, model: str) -> None:
    field = page.get_by_label(f"Model {lane}")
    field.fill(model)
    field.press("Tab")
    page.locator(".lane-head").nth("ABCDEF".index(lane)).get_by_text("Saved").wait_for()


def summary_rows(page, turn: int) -> dict[str, list[tuple[str, bool]]]:
    """Each summary row: its cells' text and whether the cell is marked as the best."""
    return page.evaluate(
        """turn => Object.fromEntries(
            [...document.querySelectorAll(`#summary-${turn} tbody tr`)].map(tr => [
                tr.querySelector('th').innerText.trim(),
                [...tr.querySelectorAll('td')].map(td => [
                    td.innerText.trim(), td.classList.contains('best')]),
            ]))""",
        turn,
    )


def number(text: str) -> float:
    return float(re.sub(r"[^\d.]", "", text.split()[0].replace(",", "")))


def test_a_near_tie_is_not_marked_and_a_clear_win_is(app_server, page):
    """The display of the summary's marks, on fixed metrics (the rule itself, on numbers:
    tests/integration/test_compare.py): a TTFT within 5 % is no win; lane B, with about
    half the total time, clearly wins that row. The turn runs for real, then its saved
    metrics are set, so no race of the machine's clock decides what is marked."""
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    send_and_wait(page, 'Warm up\n@fake {"tokens": 3}', 1)
    add_lane(page, 2)
    set_lane_param(page, 1, "max_tokens", "3")
    send_and_wait(page, 'Race\n@fake {"tokens": 30}', 2)
    page.locator("#summary-2").wait_for()
    fixed = [  # lane A, lane B
        {"ttft_ms": 3000, "total_ms": 6000, "tokens_per_s": 10.0, "completion_tokens": 30},
        {"ttft_ms": 3100, "total_ms": 3300, "tokens_per_s": 10.2, "completion_tokens": 3},
    ]
    answers = Message.objects.filter(role="assistant", turn=2).order_by("lane__position")
    assert [m.status for m in answers] == ["complete", "complete"]
    for answer, metrics in zip(answers, fixed, strict=True):
        Message.objects.filter(pk=answer.pk).update(metrics={**answer.metrics, **metrics})
    page.reload()
    summary = page.locator("#summary-2")
    summary.locator("td.best").first.wait_for()
    rows = summary_rows(page, 2)

    (ttft_a, best_a), (ttft_b, best_b) = rows["TTFT"]
    assert (ttft_a, ttft_b) == ("3,000 ms", "3,100 ms"), rows  # the saved metrics shown
    assert not best_a and not best_b, rows  # 3.3 % apart: a tie
    # Total: 6 s against 3.3 s; B's cell, and only B's, is marked.
    (total_a, best_a), (total_b, best_b) = rows["Total"]
    assert (total_a, total_b) == ("6,000 ms", "3,300 ms"), rows
    assert (best_a, best_b) == (False, True), rows
    # Every marked cell is a win by more than 5 % over the runner-up, and only those.
    for name in ("TTFT", "Total", "Speed"):
        (x, best_x), (y, best_y) = rows[name]
        x, y = number(x), number(y)
        clear = max(x, y) > 1.05 * min(x, y)
        assert (best_x or best_y) == clear, (name, rows)
    # The mark shows: B's total is highlighted, A's is not.
    cells = summary.locator("tr", has_text="Total").locator("td")
    marked = cells.nth(1).evaluate("el => getComputedStyle(el).backgroundColor")
    plain = cells.nth(0).evaluate("el => getComputedStyle(el).backgroundColor")
    assert marked != plain and marked != "rgba(0, 0, 0, 0)", (marked, plain)
    assert cells.nth(1).evaluate("el => getComputedStyle(el).fontWeight") == "700"
    ARTIFACTS.mkdir(exist_ok=True)
    summary.screenshot(path=str(ARTIFACTS / "summary-near-tie-and-clear-win.png"))
    assert not page.problems, page.problems


def test_lanes_that_did_not_answer_show_no_ellipsis(app_server, page, fake_upstream_url):
    """Lane B fails (a model the endpoint lacks), lane C is stopped before its first
    token, lane D is added after the turn: the summary says so, with no "…".

    The endpoint is the fake on its own port, and the turn's answers hold before their
    first token until the test opens the gate: lane C is certainly unanswered when Stop
    is pressed (a 4 s TTFT used to stand for that, which a busy machine could outrun)."""
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    send_and_wait(page, 'Warm up\n@fake {"tokens": 3}', 1)
    add_lane(page, 2)
    add_lane(page, 3)
    set_model(page, "B", "no-such-model")
    gate = f"summary-{uuid.uuid4().hex[:12]}"
    page.get_by_label("Message").fill(
        f'Held start\n@fake {{"tokens": 5, "hold_after": 0, "gate": "{gate}"}}'
    )
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    cells.nth(1).locator('[data-status="error"]').wait_for()
    stopping = cells.nth(2).locator('[data-status="streaming"]')
    stopping.wait_for()
    assert stopping.locator(".msg-body").inner_text().strip() == ""  # no token yet
    cells.nth(2).get_by_role("button", name="Stop this answer").click()
    cells.nth(2).locator('[data-status="stopped"]').wait_for()
    # Lane A, held all along, answers once the gate opens.
    assert cells.nth(0).locator('[data-status="streaming"]').count() == 1
    httpx.post(f"{fake_upstream_url}/fake/gates/{gate}", timeout=10).raise_for_status()
    cells.nth(0).locator('[data-status="complete"]').wait_for()

    summary = page.locator("#summary-2")
    finish = summary.locator("tr", has_text="Finish").locator("td")
    expect(finish).to_have_text(["stop", "error", "stopped"])
    assert "…" not in summary.inner_text()
    # The turn is over: Branch is offered (it is not while a lane is still streaming).
    expect(summary.get_by_role("button", name="Branch")).to_be_visible()

    add_lane(page, 4)
    page.reload()
    summary = page.locator("#summary-2")
    expect(summary.locator("thead th")).to_have_text(["Turn 2", "A", "B", "C", "D"])
    finish = summary.locator("tr", has_text="Finish").locator("td")
    expect(finish).to_have_text(["stop", "error", "stopped", "—"])
    assert "has no answer to this turn" in finish.nth(3).get_attribute("title")
    assert "…" not in summary.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    summary.screenshot(path=str(ARTIFACTS / "summary-lanes-without-answers.png"))
    assert not page.problems, page.problems


def test_the_leaderboard_lists_one_model_under_two_settings_as_two_rows(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    send_and_wait(page, 'Warm up\n@fake {"tokens": 3}', 1)
    add_lane(page, 2)
    set_lane_param(page, 1, "temperature", "1.5")
    assert page.get_by_label("Model A").input_value() == "demo"
    assert page.get_by_label("Model B").input_value() == "demo"
    page.get_by_role("button", name="Blind").click()
    page.get_by_role("button", name="Blind: on").wait_for()
    lane_pks = [
        head.get_attribute("id").removeprefix("lane-head-")
        for head in page.locator(".lane-head").all()
    ]
    for turn, position in ((2, 0), (3, 0), (4, 1)):
        send_and_wait(page, f'Question {turn}\n@fake {{"tokens": 6}}', turn)
        # Blind shuffles each turn's answers: the page says which letter is which lane
        # only in its markup (the cell's id), which a test may read and a user does not.
        winner = page.locator(f"#cell-{turn}-{lane_pks[position]}").get_attribute("data-lane")
        summary = page.locator(f"#summary-{turn}")
        summary.get_by_role("button", name=f"{winner} is better").click()
        summary.get_by_text(f"Voted: {winner} better").wait_for()

    page.goto(app_server + "/leaderboard/")
    rows = page.locator(".page table.table tbody tr")
    expect(rows).to_have_count(2)
    table = [row.locator("td").all_inner_texts() for row in rows.all()]
    rated = fit([(("a", "b"), "a"), (("a", "b"), "a"), (("a", "b"), "b")])
    # rank, endpoint · model, parameters, rating, interval, votes, wins, losses, ties, all bad
    assert table == [
        ["1", "Demo (offline) · demo", "endpoint defaults", f"{rated['a']:.0f}", "after 5 votes",
         "3", "2", "1", "0", "0"],
        ["2", "Demo (offline) · demo", "temp 1.5", f"{rated['b']:.0f}", "after 5 votes",
         "3", "1", "2", "0", "0"],
    ], table  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leaderboard-two-settings.png"))
    assert not page.problems, page.problems
