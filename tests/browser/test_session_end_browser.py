"""A page whose session ended elsewhere says so, instead of "Reconnecting…" for ever."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.browser.test_chat_flow import create_first_account, first_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_logging_out_in_another_tab_closes_this_pages_sockets_and_says_why(app_server, page):
    create_first_account(page, app_server)
    first_answer(page)
    expect(page.locator("[data-conversation]")).to_have_attribute("data-socket", "open")

    other = page.context.new_page()
    other.goto(app_server + "/")
    other.get_by_role("button", name="Log out ada").click()
    other.wait_for_url("**/accounts/login/**")

    expect(page.locator("[data-conversation]")).to_have_attribute("data-socket", "closed")
    expect(page.locator("[data-sidebar-socket]")).to_have_attribute("data-socket", "closed")
    expect(page.locator("#socket-state")).to_contain_text("Signed out")
    # What is typed now goes nowhere: no question is saved through the closed socket.
    before = Message.objects.count()
    page.get_by_label("Message").fill("Sent after the log-out")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#socket-state")).to_contain_text("Signed out")
    assert Message.objects.count() == before
    assert page.get_by_label("Message").input_value() == "Sent after the log-out"
    assert not page.problems, page.problems
