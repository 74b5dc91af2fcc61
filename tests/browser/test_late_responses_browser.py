"""Responses that arrive late, reproduced on purpose: the test holds a request (or orders
the browser's tasks) so that what a busy machine does by chance happens every time.

Each test here failed before its fix, on a quiet machine, every run."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_flow import answers, create_first_account, first_answer
from tests.browser.test_compare_browser import add_lane

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def hold_posts(page, suffix: str) -> list:
    """Hold every POST whose URL ends with ``suffix`` until the test continues it."""
    held: list = []

    def handler(route):
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: url.endswith(suffix), handler)
    return held


def until_held(page, held: list, count: int = 1) -> None:
    """Until ``count`` requests are held: Playwright runs route handlers while it talks to
    the browser, so each round trip is a chance for them to run (no time is waited)."""
    for _ in range(10_000):
        if len(held) >= count:
            return
        page.evaluate("0")
    raise AssertionError(f"{count} request(s) were never made; held {len(held)}")


def test_a_save_answered_after_the_panel_switched_lanes_updates_the_chips(app_server, page):
    """The panel's autosave left, then the Lane select replaced the panel, then the save's
    answer came: its chips must land in the lane heads (htmx looked for them inside the
    detached panel: `htmx:oobErrorNoTarget #lane-chips-N`, chips stale)."""
    create_first_account(page, app_server)
    first_answer(page)
    add_lane(page, 2)
    held = hold_posts(page, "/params/")
    max_tokens = page.locator("#param-max_tokens")
    max_tokens.fill("77")
    max_tokens.press("Tab")
    until_held(page, held)

    page.locator("#panel-lane-select").select_option(label="B · demo")
    expect(page.locator("#panel-lane-select option:checked")).to_have_text("B · demo")
    expect(page.locator("#param-max_tokens")).to_have_value("")

    with page.expect_response(lambda r: r.url.endswith("/params/")):
        held[0].continue_()
    chips_a = page.locator(".lane-head").nth(0).locator(".lane-chips")
    expect(chips_a).to_contain_text("77")
    expect(page.locator(".lane-head").nth(1).locator(".lane-chips")).not_to_contain_text("77")
    # What was aimed at the replaced panel stays out of the new one (lane B's).
    expect(page.locator("#params-status")).to_have_text("")
    page.locator("#panel-lane-select").select_option(label="A · demo")
    expect(page.locator("#param-max_tokens")).to_have_value("77")
    assert not page.problems, page.problems


def test_a_save_answered_after_a_preset_replaced_the_panel_updates_the_chips(app_server, page):
    """The same late answer, the panel replaced by applying a preset instead."""
    create_first_account(page, app_server)
    first_answer(page)
    page.locator("#param-temperature").fill("0.4")
    page.get_by_placeholder("Save current as…").fill("Cool")
    page.locator(".preset-row").get_by_role("button", name="Save").click()
    page.get_by_text("Preset “Cool” saved.").wait_for()

    held = hold_posts(page, "/params/")
    seed = page.locator("#param-seed")
    seed.fill("12345")
    seed.press("Tab")
    until_held(page, held)
    page.locator("#preset-select").select_option(label="Cool")
    page.locator(".preset-row").get_by_role("button", name="Apply").click()
    page.get_by_text("Applied “Cool”.").wait_for()

    with page.expect_response(lambda r: r.url.endswith("/params/")):
        held[-1].continue_()
    expect(page.locator(".lane-chips").first).to_contain_text("12345")
    assert not page.problems, page.problems


def test_a_save_from_a_page_without_a_new_lane_aims_no_chips_at_it(app_server, page):
    """Another tab added a lane: this page has no head (no chips) for it yet, so the
    answer to its save must not carry that lane's chips."""
    create_first_account(page, app_server)
    first_answer(page)
    other = page.context.new_page()
    other.goto(page.url)
    other.get_by_role("button", name="+ Lane").click()
    other.locator(".lane-head").nth(1).wait_for()
    other.close()

    assert page.locator(".lane-head").count() == 1  # this page still shows one lane
    with page.expect_response(lambda r: r.url.endswith("/params/") and r.ok):
        page.locator("#param-max_tokens").fill("55")
        page.locator("#param-max_tokens").press("Tab")
    expect(page.locator(".lane-chips").first).to_contain_text("55")
    expect(page.locator("#params-status")).to_have_text("Saved")
    assert not page.problems, page.problems


def test_a_dialog_closed_just_before_the_next_one_arrives_keeps_the_new_content(app_server, page):
    """The dialog's close event comes a task after close(); on a busy machine the next
    dialog's content (Inspect, Code) can arrive and reopen it first. The close handler
    emptied the dialog then, leaving it open and blank. Here the order is forced: close,
    then the next content and showModal in the same task, as htmx's afterSwap does."""
    create_first_account(page, app_server)
    first_answer(page)
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    expect(page.locator("#inspector-request")).to_be_visible()
    page.evaluate(
        """() => {
        const dialog = document.getElementById("modal");
        dialog.close();
        document.getElementById("modal-body").innerHTML = '<p id="next">Next dialog</p>';
        dialog.showModal();
        }"""
    )
    # The close event has run by the time a new animation frame has been drawn.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
    expect(page.locator("#modal #next")).to_be_visible()
    # And a dialog closed for good is still emptied.
    page.keyboard.press("Escape")
    expect(page.locator("#modal")).to_be_hidden()
    expect(page.locator("#modal-body > *")).to_have_count(0)
    assert not page.problems, page.problems


KEEP_SOCKETS = """
window.__sockets = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  window.__sockets.push(socket);
  return socket;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, { OPEN: 1, CLOSED: 3, CONNECTING: 0, CLOSING: 2 });
"""


def test_a_snapshot_arriving_after_the_answers_final_render_is_dropped(app_server, page):
    """A snapshot taken as the socket connected (or asked for by "sync") can reach the page
    after the answer's final render, which has no streaming fields left: htmx logged
    `oobErrorNoTarget #t-N` (seen in CI on the first answer of a new conversation). Here
    such frames are delivered on purpose, through the page's own socket."""
    page.add_init_script(KEEP_SOCKETS)
    create_first_account(page, app_server)
    first_answer(page)
    answer = answers(page).first
    message_id = answer.get_attribute("id").removeprefix("m-")
    final = answer.locator(".msg-body").inner_html()
    expect(page.locator("[data-conversation]")).to_have_attribute("data-socket", "open")
    page.evaluate(
        """(id) => {
        const socket = window.__sockets.find((s) => s.url.includes("/ws/c/"));
        for (const data of [
            `<span id="t-${id}" hx-swap-oob="innerHTML">a stale snapshot</span>`,
            `<span id="t-${id}" hx-swap-oob="beforeend"> and a stale delta</span>`,
            `<span id="r-${id}" hx-swap-oob="beforeend">stale reasoning</span>`,
        ]) socket.dispatchEvent(new MessageEvent("message", { data }));
        }""",
        message_id,
    )
    # The frames went through the page's handlers (in dispatchEvent, synchronously).
    assert answer.locator(".msg-body").inner_html() == final
    assert answer.get_attribute("data-status") == "complete"
    assert not page.problems, page.problems
