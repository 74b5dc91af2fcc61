"""Words and numbers as the app writes them: the code export's note in good English, the
endpoint form's "blank keeps the key" only where a key is stored, and every duration, token
count and speed with a thousands separator (the summary said "1,546 ms", the answer's own
metrics "1546 ms")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/ui1-shots")
# Four digits or more with no separator: "1546", not "1,546" nor "59.5".
UNSEPARATED = re.compile(r"(?<![\d,.])\d{4,}(?![\d,])")


def test_the_code_note_reads_well(app_server, page):
    create_first_account(page, app_server)
    send_and_wait(page, "Hello", 1)
    answers(page).first.get_by_role("button", name="Copy this request as code").click()
    note = page.locator("#modal-body > p.muted").first
    note.wait_for()
    text = note.inner_text()
    assert "The API key comes from the environment variable OPENAI_API_KEY." in text, text
    assert "key come from" not in text
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "copy-code-note.png"))


def test_blank_keeps_the_key_only_when_there_is_one(app_server, page):
    create_first_account(page, app_server)
    page.goto(app_server + "/endpoints/new/")
    key_help = page.locator(".field:has(#id_api_key) .help")
    headers_help = page.locator(".field:has(#id_extra_headers) .help")
    assert "keep the current" not in key_help.inner_text()
    assert "no key" in key_help.inner_text()
    assert "keep the current" not in headers_help.inner_text()
    page.screenshot(path=str(SHOTS / "copy-add-endpoint.png"), full_page=True)
    page.get_by_label("Name").fill("Keyed")
    page.get_by_label("Base URL").fill("http://fake.invalid/v1")
    page.get_by_label("API key").fill("sk-test-1234567890")
    page.get_by_label("Extra headers").fill("X-Org: 42")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="Keyed").wait_for()
    assert key_help.inner_text() == "Leave blank to keep the current key."
    assert "leave blank to keep the current ones" in headers_help.inner_text()
    assert not page.problems, page.problems


def test_every_figure_has_a_thousands_separator(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    # Over a second to the first token and over a thousand tokens: four-digit figures.
    send_and_wait(page, 'Count\n@fake {"tokens": 1200, "tps": 4000, "ttft_ms": 1100}', 1)
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    send_and_wait(page, 'Again\n@fake {"tokens": 1200, "tps": 4000, "ttft_ms": 1100}', 2)
    card = answers(page).first.locator(".metrics").inner_text()
    assert re.search(r"TTFT\s+1,\d{3} ms", card), card
    assert "1,200" in card, card
    figures = {
        "metrics": page.locator(".metrics").all_inner_texts(),
        "summary": page.locator(".summary").all_inner_texts(),
        "totals": [page.locator("#conv-totals").inner_text()],
    }
    assert all(figures.values()), figures
    for where, texts in figures.items():
        for text in texts:
            assert not UNSEPARATED.search(text), (where, text)
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    inspector = page.locator("#modal-body .metrics").first
    inspector.wait_for()
    assert not UNSEPARATED.search(inspector.inner_text()), inspector.inner_text()
    assert re.search(r"1,\d{3} ms", inspector.inner_text())
    page.screenshot(path=str(SHOTS / "copy-numbers-inspector.png"))
    page.keyboard.press("Escape")
    page.locator("#modal").wait_for(state="hidden")
    page.locator(".summary").last.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "copy-numbers.png"))
    assert not page.problems, page.problems
