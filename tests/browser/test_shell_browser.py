"""The app shell stays put: the document never scrolls, whatever a page holds; the regions
inside it (the messages, the side panel, the sidebar's list, a page's body) scroll instead.

It used to: with one tool defined the document was 1,857 px tall in a 900 px window (the
visually hidden labels of the side panel, absolutely positioned, were placed against the
document, not the panel that scrolls), so the wheel over the panel scrolled the whole app
off screen and opening a search hit shifted the shell by 220 px."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth import get_user_model

from chat.models import Conversation
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account
from tests.integration.history_world import chat_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = Path("/tmp/ui1-shots")

SIZES = """() => { const d = document.scrollingElement;
  return {height: d.scrollHeight, width: d.scrollWidth, top: d.scrollTop,
          innerHeight: innerHeight, innerWidth: innerWidth}; }"""


def document_does_not_scroll(page, what: str) -> None:
    sizes = page.evaluate(SIZES)
    assert sizes["height"] <= sizes["innerHeight"], (what, sizes)
    assert sizes["width"] <= sizes["innerWidth"], (what, sizes)
    assert sizes["top"] == 0, (what, sizes)
    targets_are_big_enough(page, what)


# axe-core (pinned, from the axe-playwright-python package): WCAG 2.2 AA 2.5.8, targets
# of at least 24×24 CSS px, or spaced so that a 24 px circle on each touches no other.
_AXE = Axe()
TARGET_SIZE = {"runOnly": {"type": "rule", "values": ["target-size"]}}


def targets_are_big_enough(page, what: str) -> None:
    results = _AXE.run(page, options=TARGET_SIZE).response
    small = [
        (node["target"], node["failureSummary"].splitlines()[-1].strip())
        for violation in results["violations"]
        for node in violation["nodes"]
    ]
    assert not small, (what, small)


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), caret="initial")


def scrolls_to_its_end(page, selector: str) -> None:
    """The region scrolls (it holds more than it shows) and its last child comes into view,
    inside the window, once it is scrolled to the end."""
    region = page.locator(selector)
    assert region.evaluate("el => el.scrollHeight > el.clientHeight"), selector
    region.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    bottom = region.evaluate("el => el.lastElementChild.getBoundingClientRect().bottom")
    assert bottom <= page.viewport_size["height"] + 1, (selector, bottom)
    region.evaluate("el => { el.scrollTop = 0; }")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_document_never_scrolls_on_any_page(app_server, page, viewport):
    phone = viewport is PHONE
    tag = "phone" if phone else "desktop"
    page.set_viewport_size(viewport)
    create_first_account(page, app_server)
    document_does_not_scroll(page, "new conversation")

    # A long answer.
    send_and_wait(page, 'Tell me a long story\n@fake {"tokens": 900}', 1)
    document_does_not_scroll(page, "long answer")
    scrolls_to_its_end(page, "#messages")

    # A tool defined, the side panel open (a sheet on a phone).
    if phone:
        page.locator(".conv-actions").get_by_role("button", name="Panel").click()
        page.wait_for_function(
            "() => getComputedStyle(document.getElementById('side-panel')).transform === 'none'"
        )
    page.locator("#tools-panel").get_by_role("button", name="Weather").click()
    page.get_by_label("Tool 1 JSON").wait_for()
    document_does_not_scroll(page, "a tool, the panel open")
    scrolls_to_its_end(page, "#side-panel")
    # The wheel over the panel scrolls the panel, never the app.
    page.locator("#side-panel").hover()
    page.mouse.wheel(0, 3000)
    page.wait_for_function("() => document.getElementById('side-panel').scrollTop > 0")
    document_does_not_scroll(page, "wheel over the panel")
    shot(page, f"shell-tools-panel-{tag}.png")
    if phone:
        page.get_by_role("button", name="Close parameters").click()
        page.locator("#side-panel").wait_for(state="hidden")

    # A comparison with three lanes.
    for lanes in (2, 3):
        page.get_by_role("button", name="+ Lane").click()
        page.locator(".lane-head").nth(lanes - 1).wait_for()
    send_and_wait(page, "Compare these", 2)
    document_does_not_scroll(page, "three lanes")
    shot(page, f"shell-three-lanes-{tag}.png")

    # A search hit opened in a long chat.
    ada = get_user_model().objects.get(username="ada")
    texts = []
    for turn in range(1, 16):
        texts.append(f"Question {turn}: " + "tell me more. " * 20)
        texts.append("The **checkpoint** moves pages back." if turn == 3 else "Filler. " * 60)
    chat_with(ada, "A long chat", *texts)
    page.goto(app_server + "/")
    if phone:
        page.locator(".topbar").get_by_role("button", name="Open the menu").click()
    page.get_by_label("Search conversations").fill("checkpoint")
    page.locator(".conv-hit mark").first.wait_for()
    document_does_not_scroll(page, "search results")
    page.locator(".conv-hit").first.click()
    page.locator(".msg.found").wait_for()
    document_does_not_scroll(page, "search hit opened")
    shot(page, f"shell-search-hit-{tag}.png")

    # The pages.
    page.goto(app_server + "/endpoints/")
    document_does_not_scroll(page, "endpoints")
    page.goto(app_server + "/endpoints/new/")
    document_does_not_scroll(page, "endpoint form")
    page.get_by_label("Name").fill("Reasoning (fake)")
    page.get_by_label("Base URL").fill("http://fake.invalid/reasoning/v1")
    page.get_by_label("Default model").fill("demo")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="Reasoning (fake)").wait_for()
    page.locator("#compat").get_by_role("button", name="Check compatibility").click()
    page.locator('#compat[data-state="done"]').wait_for()
    document_does_not_scroll(page, "compat report")
    scrolls_to_its_end(page, ".page")
    page.locator("#compat").scroll_into_view_if_needed()
    document_does_not_scroll(page, "compat report scrolled into view")
    # The profile's buttons wrap on a phone rather than run off the page's edge.
    right = page.locator(".toolbar .btn").last.evaluate("el => el.getBoundingClientRect().right")
    assert right <= viewport["width"], right
    # The evidence is readable on a phone too (it was a few letters wide, a word per line).
    evidence = page.locator(".compat-evidence").first.bounding_box()
    assert evidence["width"] >= 200, evidence
    shot(page, f"shell-compat-{tag}.png")

    # The other pages: leaderboard, import, history search, password, a shared transcript.
    shared = Conversation.objects.get(title="A long chat")
    shared.share_token = "shell-test-token-0123456789abcdefghij"
    shared.save(update_fields=["share_token"])
    for path in ("/leaderboard/", "/import/", "/history/search/?q=checkpoint",
                 "/accounts/password/"):  # fmt: skip
        page.goto(app_server + path)
        document_does_not_scroll(page, path)
    # A shared transcript is a document, not the app: it scrolls, but never sideways.
    page.goto(app_server + f"/s/{shared.share_token}/")
    sizes = page.evaluate(SIZES)
    assert sizes["width"] <= sizes["innerWidth"], ("shared", sizes)
    targets_are_big_enough(page, "shared")
    shot(page, f"shell-shared-{tag}.png")

    page.goto(app_server + "/")
    if phone:
        page.locator(".topbar").get_by_role("button", name="Open the menu").click()
    page.get_by_role("button", name="Log out ada").click()
    page.get_by_role("button", name="Log in").wait_for()
    document_does_not_scroll(page, "login")
    assert not page.problems, page.problems
