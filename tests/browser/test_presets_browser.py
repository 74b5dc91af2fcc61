"""Presets in Chromium: a preset saved with the tools brings them to another chat."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_chat_flow import answers, create_first_account, first_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_preset_with_tools_restores_them_in_another_chat_without_a_reload(app_server, page):
    create_first_account(page, app_server)
    first_answer(page, "Hello")

    # The weather tool, called by name, and a temperature: saved as one preset.
    page.get_by_role("button", name="Weather").click()
    page.get_by_label("Tool 1 JSON").wait_for()
    # The new tools form is in the page; a change made before htmx has bound its trigger
    # would be lost (seen once in CI under load), so wait for htmx to have processed it.
    page.wait_for_function(
        "() => document.getElementById('tools')?.['htmx-internal-data']?.initHash"
    )
    # The tools form saves 250 ms after a change; "Saved" already shows from the add.
    with page.expect_response(lambda r: r.url.endswith("/tools/") and r.ok):
        page.locator("#tool-choice").select_option("function:get_weather")
    page.locator("#tools-status").get_by_text("Saved").wait_for()
    page.locator("#param-temperature").fill("0.3")
    page.get_by_placeholder("Save current as…").fill("Weather run")
    page.get_by_label("with the tools and tool choice").check()
    page.locator(".preset-row").get_by_role("button", name="Save").click()
    page.get_by_text("Preset “Weather run” saved.").wait_for()

    # A new chat has neither; applying the preset brings both, live.
    page.get_by_role("button", name="New conversation").click()
    first_answer(page, "Another chat")
    assert page.get_by_label("Tool 1 JSON").count() == 0
    page.locator("#preset-select").select_option(label="Weather run (+ tools)")
    page.locator(".preset-row").get_by_role("button", name="Apply").click()
    page.get_by_text("Applied “Weather run”.").wait_for()
    assert "get_weather" in page.get_by_label("Tool 1 JSON").input_value()
    assert page.locator("#tool-choice").input_value() == "function:get_weather"
    assert page.locator("#param-temperature").input_value() == "0.3"

    page.get_by_label("Message").fill("Anything at all")
    page.get_by_role("button", name="Send").click()
    second = answers(page).nth(1)
    second.and_(page.locator('[data-status="complete"]')).wait_for()
    assert second.locator(".tool-call code").first.inner_text() == "get_weather"
    second.get_by_role("button", name="Inspect this answer").click()
    body = json.loads(page.locator("#inspector-request").inner_text())
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["temperature"] == 0.3
    assert not page.problems, page.problems
