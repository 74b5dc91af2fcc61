"""The compatibility report in Chromium: started from the profile page, the table fills in
row by row while the page polls, then the suggested settings are applied in one click."""

from __future__ import annotations

import pytest

from chat.compat.probes import PROBES
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# True while a check runs and some rows have a status but not all: the table filling in.
FILLING_IN = """() => {
  const s = document.querySelector('#compat');
  if (!s || s.dataset.state !== 'running') return false;
  const done = s.querySelectorAll('tr.compat-row:not([data-status="pending"])').length;
  const pending = s.querySelectorAll('tr.compat-row[data-status="pending"]').length;
  return done > 0 && pending > 0;
}"""


def test_check_an_endpoint_then_apply_the_suggested_settings(app_server, page):
    create_first_account(page, app_server)
    # An endpoint that imitates an o1-style reasoning model, served by the built-in fake.
    page.goto(app_server + "/endpoints/new/")
    page.get_by_label("Name").fill("Reasoning (fake)")
    page.get_by_label("Base URL").fill("http://fake.invalid/reasoning/v1")
    page.get_by_label("Default model").fill("demo")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="Reasoning (fake)").wait_for()

    compat = page.locator("#compat")
    compat.get_by_text("Not checked yet").wait_for()
    assert compat.get_by_label("Model to check").input_value() == "demo"
    compat.get_by_role("button", name="Check compatibility").click()

    page.locator('#compat[data-state="running"]').wait_for()
    compat.get_by_text("probes done").wait_for()
    page.wait_for_function(FILLING_IN)  # rows appear with their statuses
    page.locator('#compat[data-state="done"]').wait_for()

    def status(key: str) -> str:
        return compat.locator(f'tr[data-key="{key}"]').get_attribute("data-status")

    assert status("max_tokens") == "unsupported"
    assert status("max_completion_tokens") == "supported"
    assert status("system_role") == "unsupported"
    assert status("developer_role") == "supported"
    assert status("logprobs") == "unsupported"
    assert status("stream") == "supported" and status("json_schema") == "supported"
    assert compat.locator('tr[data-status="pending"]').count() == 0
    row = compat.locator('tr[data-key="max_tokens"]')
    assert "not supported" in row.inner_text()
    row.get_by_text("Evidence").click()
    row.get_by_text("'max_tokens' is not supported with this model").first.wait_for()
    assert "400" in row.locator("dl").inner_text()
    assert "against demo" in compat.inner_text()

    compat.screenshot(path=str(ARTIFACTS / "compat_report.png"))
    # What applying changes is shown first.
    changes = compat.locator(".compat-changes tbody tr")
    assert changes.count() == 3
    field_change = compat.locator('tr[data-name="max_tokens_field"]').inner_text()
    assert "max_tokens" in field_change and "max_completion_tokens" in field_change
    compat.get_by_role("button", name="Apply suggested settings").click()
    page.get_by_text("Applied the suggested settings").wait_for()
    assert page.locator("#id_quirk_max_tokens_field").input_value() == "max_completion_tokens"
    assert page.locator("#id_quirk_system_role").input_value() == "developer"
    assert page.locator("#id_quirk_drop_params").input_value() == "logprobs, top_logprobs"
    page.locator("#compat").get_by_text("already fit this report").wait_for()
    # The report survives a reload.
    page.reload()
    assert page.locator('#compat[data-state="done"] tr.compat-row').count() == len(PROBES)
    assert not page.problems, page.problems
