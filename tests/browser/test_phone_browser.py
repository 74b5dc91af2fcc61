"""A phone (390 x 844): everything reachable from a menu drawer, a compact header, the
parameter panel as a sheet; and the composer that does not move while an answer streams."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from chat.models import EndpointProfile, Vote
from tests.browser.conftest import ARTIFACTS
from tests.browser.gates import Gate, use_local_fake
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import answers, create_first_account
from tests.integration.history_world import chat_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SHOTS = Path("/tmp/ui1-shots")


def slid_in(page, element_id: str) -> None:
    page.wait_for_function(
        "id => getComputedStyle(document.getElementById(id)).transform === 'none'", arg=element_id
    )


def on_screen(locator, name: str) -> None:
    """Visible, wholly inside the phone's width and on the page's first screen."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (name, box)
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (name, box)
    assert on_screen_and_clickable(locator.page, locator), name


def on_screen_and_clickable(page, locator) -> bool:
    box = locator.bounding_box()
    if not box or box["x"] < 0 or box["x"] + box["width"] > PHONE["width"] + 0.5:
        return False
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    return hit is not None and locator.evaluate(
        "(el, [x, y]) => el.contains(document.elementFromPoint(x, y))",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )


def test_the_drawer_reaches_history_search_and_every_page(app_server, page):
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    send_and_wait(page, "How do I read a large CSV file lazily in Python?", 1)
    sidebar = page.locator("#sidebar")
    links = ["Endpoints", "Leaderboard", "Import", "Export all (JSON)", "Password"]
    # Closed: nothing of it is on screen or reachable by Tab.
    assert not sidebar.is_visible()
    menu = page.locator(".topbar").get_by_role("button", name="Menu")
    assert menu.get_attribute("aria-expanded") == "false"
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    slid_in(page, "sidebar")
    for name in links:
        assert on_screen_and_clickable(page, sidebar.get_by_role("link", name=name)), name
    assert on_screen_and_clickable(page, sidebar.get_by_role("button", name="Log out ada"))
    search = sidebar.get_by_role("searchbox", name="Search conversations")
    # Focus moved in, to the Close button: not to the search box, whose on-screen keyboard
    # would cover the drawer.
    close = sidebar.get_by_role("button", name="Close menu")
    assert close.evaluate("el => el === document.activeElement")
    assert not search.evaluate("el => el === document.activeElement")
    conversation = sidebar.locator(".conv-link").first
    assert on_screen_and_clickable(page, conversation)
    page.screenshot(path=str(ARTIFACTS / "phone-drawer.png"))
    # Esc closes it; the backdrop too.
    page.keyboard.press("Escape")
    sidebar.wait_for(state="hidden")
    menu.click()
    page.mouse.click(370, 400)  # the backdrop, right of the drawer
    sidebar.wait_for(state="hidden")
    # Search from the drawer finds the conversation.
    menu.click()
    search.fill("CSV")
    page.locator("#conv-list .conv-hit").first.wait_for()
    sidebar.get_by_role("button", name="Close menu").click()
    sidebar.wait_for(state="hidden")
    assert menu.evaluate("el => el === document.activeElement")  # focus back on the button
    menu.click()
    sidebar.get_by_role("link", name="Endpoints").click()
    page.wait_for_url("**/endpoints/")
    assert not page.problems, page.problems


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_header_and_lane_heads_leave_the_screen_to_the_messages(app_server, page, lanes):
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    send_and_wait(page, "Hello there", 1)
    for count in range(2, lanes + 1):
        page.get_by_role("button", name="+ Lane").click()
        page.locator(".lane-head").nth(count - 1).wait_for()
    top = page.locator("#messages").bounding_box()["y"]
    # Top bar, title, actions and the lane heads: at most a quarter of the screen
    # (they took 45-53 % before).
    assert top <= PHONE["height"] * 0.25, top
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(ARTIFACTS / f"phone-{lanes}-lane.png"))


def test_the_panel_is_a_sheet_over_the_conversation(app_server, page):
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    send_and_wait(page, "Hello there", 1)
    side = page.locator("#side-panel")
    assert not side.is_visible()
    page.locator(".conv-actions").get_by_role("button", name="Panel").click()
    slid_in(page, "side-panel")
    box = side.bounding_box()
    # A sheet from the bottom edge, over the composer, not a scroll area under it.
    assert abs(box["y"] + box["height"] - PHONE["height"]) <= 1, box
    assert box["height"] >= PHONE["height"] * 0.5 and box["width"] >= PHONE["width"] - 1
    composer = page.locator("#composer-input").bounding_box()
    assert box["y"] < composer["y"]
    temperature = page.locator("#param-temperature")
    assert on_screen_and_clickable(page, temperature)
    temperature.fill("0.4")
    temperature.press("Tab")
    page.locator("#params-status").get_by_text("Saved").wait_for()
    # caret="initial": hiding the caret leaves style="" on every input, which an htmx swap
    # then copies (a CSP report that is Playwright's, not the page's).
    page.screenshot(path=str(ARTIFACTS / "phone-sheet.png"), caret="initial")
    page.get_by_role("button", name="Close parameters").click()
    side.wait_for(state="hidden")
    page.locator(".conv-actions").get_by_role("button", name="Panel").click()
    page.keyboard.press("Escape")
    side.wait_for(state="hidden")
    # What the sheet saved is what the next turn sends.
    send_and_wait(page, "Again", 2)
    answers(page).nth(1).get_by_role("button", name="Inspect this answer").click()
    page.locator("#inspector-request").wait_for()
    assert '"temperature": 0.4' in page.locator("#inspector-request").inner_text()
    assert not page.problems, page.problems


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, PHONE])
def test_send_and_stop_share_one_place_and_nothing_moves(
    app_server, page, viewport, fake_upstream_url
):
    page.set_viewport_size(viewport)
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    send_and_wait(page, "Warm up", 1)
    wide = viewport["width"] > 1100
    assert page.locator(".topbar").is_visible() is not wide
    if wide:  # the phone's chrome never shows on a desktop
        for selector in (".drawer-close", ".sheet-head", ".drawer-backdrop"):
            assert not page.locator(selector).is_visible(), selector
    send = page.get_by_role("button", name="Send", exact=True)
    before = send.bounding_box()
    box_before = page.locator("#composer-input").bounding_box()
    # Held after 5 tokens by a gate nobody opens: Stop is there however long we look.
    gate = Gate(fake_upstream_url)
    page.get_by_label("Message").fill("Long one" + gate.script(tokens=200, hold_after=5))
    send.click()
    stop = page.locator(".composer-side").get_by_role("button", name="Stop")
    stop.wait_for()
    during = stop.bounding_box()
    for key in ("x", "y", "width", "height"):
        assert abs(during[key] - before[key]) <= 1, (key, before, during)
    assert page.locator("#composer-input").bounding_box() == box_before
    # A toast (e.g. "Edited…") never covers Stop.
    page.evaluate(
        """() => { const t = document.createElement('div'); t.className = 'toast';
        t.textContent = 'A toast with a long message in it, as long as they get';
        document.getElementById('toasts').appendChild(t); }"""
    )
    toast = page.locator("#toasts .toast").last.bounding_box()
    assert (
        toast["x"] + toast["width"] <= during["x"]
        or toast["x"] >= during["x"] + during["width"]
        or toast["y"] + toast["height"] <= during["y"]
        or toast["y"] >= during["y"] + during["height"]
    ), (toast, during)
    stop.click()
    answers(page).nth(1).and_(page.locator('[data-status="stopped"]')).wait_for()
    after = send.bounding_box()
    for key in ("x", "y", "width", "height"):
        assert abs(after[key] - before[key]) <= 1, (key, before, after)
    assert not page.problems, page.problems


def test_a_long_title_ends_in_an_ellipsis_in_the_top_bar(app_server, page):
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    ada = get_user_model().objects.get(username="ada")
    title = "How do I read a very large CSV file lazily in Python without pandas"
    conversation = chat_with(ada, title, "Question", "Answer")
    page.goto(f"{app_server}/c/{conversation.pk}/")
    heading = page.locator(".conv-title")
    assert heading.inner_text() == title
    # Too long for the bar: cut short, left of "+ New".
    assert heading.evaluate("el => el.scrollWidth > el.clientWidth")
    new = page.locator(".topbar").get_by_role("button", name="+ New").bounding_box()
    box = heading.bounding_box()
    assert box["x"] + box["width"] <= new["x"], (box, new)
    # The cut ends in an ellipsis: the bar as shown differs from the same title merely
    # clipped (in a flex box, text-overflow had no effect and the last letter was cut).
    shown = heading.screenshot()
    heading.evaluate("el => { el.style.textOverflow = 'clip'; }")
    clipped = heading.screenshot()
    heading.evaluate("el => { el.style.textOverflow = ''; }")
    assert shown != clipped, "the title is clipped, with no ellipsis"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone-long-title.png"))
    page.locator(".topbar").get_by_role("button", name="Open the menu").click()
    slid_in(page, "sidebar")
    page.screenshot(path=str(SHOTS / "phone-drawer-open.png"))
    assert not page.problems, page.problems


def test_every_conversation_action_is_reachable_without_scrolling_sideways(app_server, page):
    """Three lanes on a phone: Panel, + Lane, Lane options and More actions (⋯) in one row
    on screen; ⋯ opens a menu with the rest (Blind, Share setup, mode, Export / Share,
    Delete), every item on screen; Escape or a click elsewhere closes it."""
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    send_and_wait(page, "Hello there", 1)
    for count in (2, 3):
        page.get_by_role("button", name="+ Lane").click()
        page.locator(".lane-head").nth(count - 1).wait_for()
    actions = page.locator(".conv-actions")
    assert actions.evaluate("el => el.scrollWidth <= el.clientWidth")
    for name in ("Panel", "+ Lane", "Lane options", "More actions"):
        on_screen(actions.get_by_role("button", name=name, exact=True), name)
    for name in ("Blind", "Share setup", "Delete"):
        expect(actions.get_by_role("button", name=name, exact=True)).to_be_hidden()

    more = actions.get_by_role("button", name="More actions")
    more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    for name in ("Blind", "Share setup", "Delete"):
        on_screen(actions.get_by_role("button", name=name, exact=True), name)
    on_screen(actions.get_by_label("Mode"), "mode")
    on_screen(actions.locator("summary", has_text="Export / Share"), "export")
    page.screenshot(path=str(ARTIFACTS / "phone-more-actions.png"))
    page.keyboard.press("Escape")
    expect(actions.get_by_role("button", name="Blind", exact=True)).to_be_hidden()
    expect(more).to_be_focused()
    more.click()
    page.locator("#messages").click(position={"x": 10, "y": 10})
    expect(actions.get_by_role("button", name="Blind", exact=True)).to_be_hidden()

    # Panel with the menu open: the menu closes, the sheet opens.
    more.click()
    actions.get_by_role("button", name="Panel", exact=True).click()
    expect(actions.get_by_role("button", name="Blind", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Close parameters").click()
    page.locator("#side-panel").wait_for(state="hidden")

    # Blind from the menu: the page comes back with Blind on, the menu closed.
    more.click()
    actions.get_by_role("button", name="Blind", exact=True).click()
    expect(more).to_have_attribute("aria-expanded", "false")
    more.click()
    expect(actions.get_by_role("button", name="Blind: on")).to_be_visible()
    # Lane options from the toolbar opens the lanes' own prompts, as the lane heads' did.
    page.keyboard.press("Escape")
    actions.get_by_role("button", name="Lane options").click()
    expect(page.locator("details.own-prompt").first).to_be_visible()
    expect(actions.get_by_role("button", name="Lane options")).to_be_hidden()
    assert not page.problems, page.problems


def label_of(cell) -> str:
    """The label a stacked table's cell shows before its value (a ::before)."""
    return cell.evaluate("el => getComputedStyle(el, '::before').content")


def test_tables_read_as_cards_on_a_phone(app_server, page):
    """Endpoints and the leaderboard at 390 px: a card per row, a labelled line per cell;
    a base URL reads whole (it broke every 3 characters), row buttons and figures on
    screen (they were off it)."""
    page.set_viewport_size(PHONE)
    create_first_account(page, app_server)
    ada = get_user_model().objects.get(username="ada")
    url = "https://gateway.internal.example.com/openai/v1"
    EndpointProfile.objects.create(owner=ada, name="Long gateway", base_url=url)
    conversation = chat_with(ada, "Voted", "q", "a")
    lanes = [
        {"position": 0, "label": "A", "profile": "Long gateway", "model": "big-model"},
        {"position": 1, "label": "B", "profile": "Long gateway", "model": "small-model"},
    ]
    Vote.objects.create(owner=ada, conversation=conversation, turn=1, verdict="winner",
                        winner_position=0, lanes=lanes)  # fmt: skip

    def fits(what: str) -> None:
        width = page.evaluate("document.querySelector('.page').scrollWidth")
        assert width <= PHONE["width"], (what, width)

    page.goto(app_server + "/endpoints/")
    fits("endpoints")
    row = page.locator("tr", has_text="Long gateway").first
    code = row.locator("code", has_text="gateway.internal")
    assert code.bounding_box()["width"] >= 200
    assert label_of(row.locator("td[data-label='Base URL']")) == '"Base URL"'  # shown
    for name in ("Test connection", "Edit", "Compatibility"):
        box = row.locator(".btn", has_text=name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    page.screenshot(path=str(ARTIFACTS / "phone-endpoints.png"), full_page=True)

    page.goto(app_server + "/leaderboard/")
    fits("leaderboard")
    card = page.locator(".leaderboard tbody tr").first
    assert card.locator(".stack-title").inner_text() == "Long gateway · big-model"
    for label in ("Rating", "Votes", "All bad"):
        assert label_of(card.locator(f"td[data-label='{label}']")) == f'"{label}"'
    box = card.locator("td[data-label='All bad']").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"], box
    page.screenshot(path=str(ARTIFACTS / "phone-leaderboard.png"), full_page=True)
    assert not page.problems, page.problems
