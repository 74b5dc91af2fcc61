"""Dark theme: follows the system until the theme button picks one (kept in a cookie, so the
server renders it), and every text on the main pages meets WCAG AA contrast in both themes
(axe-core's color-contrast rule, in Chromium)."""

from __future__ import annotations

import json

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import ARTIFACTS
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account
from tests.browser.test_phone_browser import PHONE, slid_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIGHT_BG, DARK_BG = "rgb(247, 247, 248)", "rgb(19, 20, 24)"
CONTRAST = {"runOnly": {"type": "rule", "values": ["color-contrast"]}}


def body_bg(page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def theme_cookie(page) -> str | None:
    found = [c["value"] for c in page.context.cookies() if c["name"] == "playground_theme"]
    return found[0] if found else None


def test_it_follows_the_system_until_the_button_picks_a_theme(app_server, page):
    create_first_account(page, app_server)
    page.emulate_media(color_scheme="dark")
    assert body_bg(page) == DARK_BG
    page.emulate_media(color_scheme="light")
    assert body_bg(page) == LIGHT_BG
    toggle = page.locator("[data-theme-toggle]")
    assert toggle.inner_text() == "Theme: system"

    toggle.click()
    assert toggle.inner_text() == "Theme: dark"
    assert body_bg(page) == DARK_BG  # the system still says light
    assert theme_cookie(page) == "dark"
    # The server renders the choice, so the first paint after a reload is already dark.
    response = page.reload()
    assert '<html lang="en" data-theme="dark">' in response.text()
    assert body_bg(page) == DARK_BG

    page.locator("[data-theme-toggle]").click()
    page.emulate_media(color_scheme="dark")
    assert page.locator("[data-theme-toggle]").inner_text() == "Theme: light"
    assert body_bg(page) == LIGHT_BG  # the system now says dark
    assert theme_cookie(page) == "light"

    page.locator("[data-theme-toggle]").click()
    assert page.locator("[data-theme-toggle]").inner_text() == "Theme: system"
    assert theme_cookie(page) is None
    assert body_bg(page) == DARK_BG
    response = page.reload()
    assert "data-theme" not in response.text().split(">", 2)[1]
    assert not page.problems, page.problems


def test_a_forged_theme_cookie_is_ignored(app_server, page):
    create_first_account(page, app_server)
    page.context.add_cookies(
        [{"name": "playground_theme", "value": '"><script>x</script>', "url": app_server}]
    )
    html = page.reload().text()
    assert "<script>x" not in html
    assert '<html lang="en">' in html


def make_pages(page, app_server) -> dict[str, str]:
    """A chat with markdown, code, bullets and metrics; a comparison with its summary
    (highlighted wins); the endpoints page; the history search with marked hits."""
    create_first_account(page, app_server)
    send_and_wait(page, "How do I read a large CSV file lazily in Python?", 1)
    chat_url = page.url
    page.goto(app_server + "/")
    page.get_by_label("Message").wait_for()
    send_and_wait(page, "Hello", 1)
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    send_and_wait(page, "Write a function that deduplicates a list", 2)
    return {
        "chat": chat_url,
        "comparison": page.url,
        "endpoints": app_server + "/endpoints/",
        "search": app_server + "/history/search/?q=CSV",
    }


def contrast(page, axe: Axe, where: str, within: str | None = None) -> tuple[int, list[str]]:
    """axe-core's color-contrast rule on the page as it is (or only `within` a part of
    it): how many texts it checked and passed, and one line per violation."""
    results = axe.run(
        page, context=within, options={**CONTRAST, "resultTypes": ["violations", "passes"]}
    )
    passes = sum(len(rule["nodes"]) for rule in results.response["passes"])
    failures = [
        f"{where}: {node['target']} {node['failureSummary']}"
        for rule in results.response["violations"]
        for node in rule["nodes"]
    ]
    return passes, failures


def test_every_text_meets_aa_contrast_in_both_themes(app_server, page):
    pages = make_pages(page, app_server)
    axe = Axe()
    report: dict[str, dict[str, int]] = {}
    failures = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            assert body_bg(page) == (LIGHT_BG if scheme == "light" else DARK_BG)
            passes, found = contrast(page, axe, f"{scheme} {name}")
            report.setdefault(scheme, {})[name] = passes
            failures += found
            assert passes > 20, (scheme, name, passes)  # the rule really looked at text
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "contrast.json").write_text(json.dumps(report, indent=2))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("system", "chosen", "clicks"), [("light", "dark", 1), ("dark", "light", 2)]
)
def test_every_text_meets_aa_contrast_in_the_theme_the_button_picked(
    app_server, page, system, chosen, clicks
):
    """The button's choice overrides the system (data-theme on <html>): the same pages,
    in the theme opposite to the system's."""
    pages = make_pages(page, app_server)
    page.emulate_media(color_scheme=system)
    for _ in range(clicks):
        page.locator("[data-theme-toggle]").click()
    assert page.locator("[data-theme-toggle]").inner_text() == f"Theme: {chosen}"
    axe = Axe()
    report: dict[str, int] = {}
    failures = []
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.dataset.theme") == chosen
        assert body_bg(page) == (LIGHT_BG if chosen == "light" else DARK_BG)
        passes, found = contrast(page, axe, f"{chosen} (system {system}) {name}")
        report[name] = passes
        failures += found
        assert passes > 20, (name, passes)
    page.goto(pages["comparison"])
    page.screenshot(path=str(ARTIFACTS / f"contrast-chosen-{chosen}-system-{system}.png"))
    (ARTIFACTS / f"contrast-chosen-{chosen}.json").write_text(json.dumps(report, indent=2))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_meets_aa_contrast_on_a_phone_in_the_drawer_and_the_sheet(
    app_server, page, scheme
):
    """390 px: the comparison with the menu drawer open, then with the parameter sheet
    open (each slides over the conversation, on its own backdrop)."""
    page.set_viewport_size(PHONE)
    pages = make_pages(page, app_server)
    page.emulate_media(color_scheme=scheme)
    page.goto(pages["comparison"])
    page.wait_for_load_state("networkidle")
    axe = Axe()
    report: dict[str, int] = {}
    failures = []

    passes, found = contrast(page, axe, f"{scheme} 390 comparison")
    report["comparison"], failures = passes, failures + found
    menu = page.locator(".topbar").get_by_role("button", name="Menu")
    menu.click()
    slid_in(page, "sidebar")
    passes, found = contrast(page, axe, f"{scheme} 390 drawer")
    report["drawer"], failures = passes, failures + found
    assert page.locator("#sidebar").get_by_role("link", name="Leaderboard").is_visible()
    report["drawer itself"] = contrast(page, axe, "", within="#sidebar")[0]
    page.screenshot(path=str(ARTIFACTS / f"contrast-phone-drawer-{scheme}.png"))
    page.keyboard.press("Escape")
    page.locator("#sidebar").wait_for(state="hidden")

    page.locator(".conv-actions").get_by_role("button", name="Panel").click()
    slid_in(page, "side-panel")
    page.locator("#side-panel #param-temperature").wait_for()
    passes, found = contrast(page, axe, f"{scheme} 390 sheet")
    report["sheet"], failures = passes, failures + found
    report["sheet itself"] = contrast(page, axe, "", within="#side-panel")[0]
    page.screenshot(path=str(ARTIFACTS / f"contrast-phone-sheet-{scheme}.png"), caret="initial")
    for name, passes in report.items():
        assert passes > 10, (name, passes)
    (ARTIFACTS / f"contrast-phone-{scheme}.json").write_text(json.dumps(report, indent=2))
    assert not failures, "\n".join(failures)
