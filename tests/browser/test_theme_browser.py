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


def test_every_text_meets_aa_contrast_in_both_themes(app_server, page):
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
    compare_url = page.url
    pages = {
        "chat": chat_url,
        "comparison": compare_url,
        "endpoints": app_server + "/endpoints/",
        "search": app_server + "/history/search/?q=CSV",
    }
    axe = Axe()
    report: dict[str, dict[str, int]] = {}
    failures = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            assert body_bg(page) == (LIGHT_BG if scheme == "light" else DARK_BG)
            results = axe.run(page, options={**CONTRAST, "resultTypes": ["violations", "passes"]})
            passes = sum(len(rule["nodes"]) for rule in results.response["passes"])
            report.setdefault(scheme, {})[name] = passes
            for rule in results.response["violations"]:
                for node in rule["nodes"]:
                    failures.append(f"{scheme} {name}: {node['target']} {node['failureSummary']}")
            assert passes > 20, (scheme, name, passes)  # the rule really looked at text
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "contrast.json").write_text(json.dumps(report, indent=2))
    assert not failures, "\n".join(failures)
