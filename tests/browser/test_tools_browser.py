"""Tools in Chromium: define a tool, get a streamed call, answer it, see the answer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_flow import answers, create_first_account, first_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_define_a_tool_get_a_streamed_call_answer_it(app_server, page):
    create_first_account(page, app_server)
    first_answer(page, "Hello")

    # Invalid JSON is flagged inline and never sent.
    page.get_by_role("button", name="Blank").click()
    page.get_by_label("Tool 1 JSON").fill('{"name": "broken", "parameters": {"type": 7}}')
    page.get_by_label("Tool 1 JSON").press("Tab")
    page.locator("#tool-error-0").get_by_text("not a valid JSON Schema").wait_for()
    page.get_by_label("Message").fill("Try the broken tool")
    page.get_by_role("button", name="Send").click()
    page.locator("#composer-error").get_by_text("Fix the tools first").wait_for()
    assert answers(page).count() == 1
    page.get_by_role("button", name="Remove tool 1").click()
    # The editor comes back without it (each edit posts the editor and swaps it: a click
    # on the old one before the swap would post the removed tool again).
    expect(page.get_by_label("Tool 1 JSON")).to_have_count(0)

    # A template tool, with its mock result.
    page.get_by_role("button", name="Weather").click()
    expect(page.get_by_label("Tool 1 JSON")).to_have_value(re.compile("get_weather"))
    page.get_by_label("Message").fill("What's the weather in Paris?")
    page.get_by_role("button", name="Send").click()
    second = answers(page).nth(1)
    second.and_(page.locator('[data-status="complete"]')).wait_for()
    call = second.locator(".tool-call")
    assert call.locator("code").first.inner_text() == "get_weather"
    assert '"city": "Paris"' in call.locator("pre").inner_text()
    assert "tool_calls" in second.locator(".metrics").inner_text()

    second.get_by_role("button", name="Use mock result").click()
    assert "temperature" in second.get_by_label("Result of get_weather").input_value()
    second.get_by_role("button", name="Send results").click()
    page.locator('[data-role="tool"]').first.wait_for()
    final = answers(page).nth(2)
    final.and_(page.locator('[data-status="complete"]')).wait_for()
    assert "From the tool result" in final.inner_text()
    assert page.get_by_role("button", name="Send results").count() == 0

    # It all survives a reload, and the inspector shows the tool messages that were sent.
    page.reload()
    assert page.locator('[data-role="tool"]').count() == 1
    answers(page).nth(2).get_by_role("button", name="Inspect this answer").click()
    request = page.locator("#inspector-request").inner_text()
    assert '"role": "tool"' in request and '"tools"' in request
    assert not page.problems, page.problems
