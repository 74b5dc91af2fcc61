"""Message actions: icon buttons with words (aria-label + a tooltip on hover and on keyboard
focus), and a Copy for every whole message: the markdown source as text, the rendered
answer as HTML."""

from __future__ import annotations

import pytest

from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPT = "How do I read a large CSV file lazily in Python?"


def tip(page, locator) -> str:
    return locator.evaluate("el => getComputedStyle(el, '::after').content")


def clipboard(page) -> dict[str, str]:
    return page.evaluate(
        """async () => {
        const out = {};
        for (const item of await navigator.clipboard.read())
            for (const type of item.types) out[type] = await (await item.getType(type)).text();
        return out;
    }"""
    )


def test_copy_gives_the_markdown_source_and_the_rendered_answer(app_server, page, browser):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server)
    create_first_account(page, app_server)
    send_and_wait(page, PROMPT, 1)
    answer = answers(page).first
    source = page.request.get(
        app_server + answer.locator("[data-copy-message]").get_attribute("data-copy-message")
    ).text()
    assert "```python" in source and "**" in source  # the answer's own markdown

    answer.get_by_role("button", name="Copy this answer").click()
    answer.locator("[data-copied]").wait_for()
    copied = clipboard(page)
    assert copied["text/plain"] == source
    assert "<strong>" in copied["text/html"] and 'class="code-block"' in copied["text/html"]
    assert "```" not in copied["text/html"]
    # It says so, and goes back to Copy.
    assert tip(page, answer.locator("[data-copied]")) in ('"Copied"', "none")
    answer.locator("[data-copied]").wait_for(state="detached")

    # The question's Copy, from the keyboard: focus shows the tooltip, Enter copies.
    question = page.locator('[data-role="user"]').first
    button = question.get_by_role("button", name="Copy this question")
    button.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert button.evaluate("el => el === document.activeElement")
    assert tip(page, button) == '"Copy (Markdown; rich text in a document)"'
    page.keyboard.press("Enter")
    question.locator("[data-copied]").wait_for()
    assert clipboard(page)["text/plain"] == PROMPT
    assert not page.problems, page.problems


def test_every_action_is_a_labelled_icon_button(app_server, page):
    create_first_account(page, app_server)
    send_and_wait(page, PROMPT, 1)
    for message in (page.locator('[data-role="user"]').first, answers(page).first):
        buttons = message.locator(".msg-actions button")
        assert buttons.count() >= 4
        for button in buttons.all():
            assert button.get_attribute("aria-label"), button.inner_html()
            assert button.get_attribute("data-tip")
            assert button.locator("svg.icon use").count() == 1
            assert button.inner_text().strip() == ""  # no tiny grey words
            box = button.bounding_box()
            assert box["width"] >= 24 and box["height"] >= 24  # a target, not a speck
        # Hover shows the words too.
        buttons.first.hover()
        assert tip(page, buttons.first).startswith('"Copy')
