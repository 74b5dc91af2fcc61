"""A real Chromium against a real daphne process: the Foundation's "done when"."""

from __future__ import annotations

import re

import pytest

from tests.browser.gates import Gate, use_local_fake

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-passphrase-42"


def create_first_account(page, base: str) -> None:
    page.goto(base + "/")
    page.get_by_role("heading", name="Create the first account").wait_for()
    page.locator("#id_username").fill("ada")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create the first account").click()
    page.get_by_label("Message").wait_for()


def answers(page):
    return page.locator('[data-role="assistant"]')


def first_answer(page, text: str = 'Hello\n@fake {"tokens": 6}') -> None:
    """Send ``text`` and wait until the first answer on the page is complete."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()


def streaming_answer(page, text: str, words: int, nth: int = 0):
    """Send ``text``; the ``nth`` answer, once it streams more than ``words`` words."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    answer = answers(page).nth(nth)
    answer.and_(page.locator('[data-status="streaming"]')).wait_for()
    page.wait_for_function(
        f"el => el.innerText.split(/\\s+/).length > {words}", arg=answer.element_handle()
    )
    return answer


def test_three_turns_then_stop_the_fourth_and_reload(app_server, page):
    create_first_account(page, app_server)
    expect_endpoint = page.get_by_label("Endpoint")
    assert expect_endpoint.locator("option:checked").inner_text() == "Demo (offline)"
    assert page.get_by_label("Model").input_value() == "demo"

    prompts = ["What is WAL mode?", "And **fsync**?", "Say <b>hi</b> in a code block"]
    for number, prompt in enumerate(prompts, start=1):
        page.get_by_label("Message").fill(prompt)
        if number == 2:
            page.get_by_label("Message").press("Enter")  # Enter sends
        else:
            page.get_by_role("button", name="Send").click()
        page.locator(
            f'[data-role="assistant"]:nth-match([data-role="assistant"], {number})'
            if False
            else f'[data-role="assistant"] >> nth={number - 1}'
        ).and_(page.locator('[data-status="complete"]')).wait_for()
    assert page.locator('[data-role="user"]').count() == 3
    first = answers(page).nth(0)
    assert "What is WAL mode?" in first.inner_text()
    assert first.locator(".metrics").inner_text().count("ms") >= 2  # TTFT and total
    # Raw HTML the user typed stays text, never markup.
    assert page.locator('[data-role="user"] b').count() == 0
    assert "<b>hi</b>" in page.locator('[data-role="user"]').nth(2).inner_text()

    # A slow model for the fourth turn, picked in the page (saved on change).
    page.get_by_label("Model").fill("demo-slow")
    page.get_by_label("Model").press("Tab")
    page.locator(".lane-head .save-state").get_by_text("Saved").wait_for()
    fourth = streaming_answer(page, "Now a long answer please", 6, nth=3)
    page.get_by_role("button", name="Stop").click()
    fourth.and_(page.locator('[data-status="stopped"]')).wait_for()
    stopped_text = fourth.locator(".msg-body").inner_text()
    assert page.get_by_role("button", name="Send").is_visible()

    page.reload()
    assert page.locator('[data-role="user"]').count() == 4
    assert answers(page).count() == 4
    statuses = [answers(page).nth(i).get_attribute("data-status") for i in range(4)]
    assert statuses == ["complete", "complete", "complete", "stopped"]
    assert answers(page).nth(3).locator(".msg-body").inner_text() == stopped_text
    assert "Stopped by you" in answers(page).nth(3).inner_text()
    assert page.get_by_label("Model").input_value() == "demo-slow"
    assert not page.problems, page.problems


def test_reload_mid_stream_shows_the_text_so_far_and_keeps_streaming(
    app_server, page, fake_upstream_url
):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    page.get_by_label("Model").fill("demo-slow")
    # Held after 30 tokens until the gate opens: still streaming however long the reload.
    gate = Gate(fake_upstream_url)
    streaming_answer(page, "Stream for a while" + gate.script(tokens=60, hold_after=30), 8)
    page.reload()
    answer = answers(page).first
    assert answer.get_attribute("data-status") == "streaming"
    # The text so far arrives (saved heartbeat, then the run's snapshot), still streaming.
    page.wait_for_function(
        "el => el.querySelector('.msg-body').innerText.split(/\\s+/).filter(Boolean).length > 5",
        arg=answer.element_handle(),
    )
    assert answer.get_attribute("data-status") == "streaming"
    gate.open()
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    final = answer.locator(".msg-body").inner_text()
    # the words shown before the reload are the start of the final text, once
    words = re.findall(r"\w+", final)
    assert len(words) >= 40
    assert final.count(words[3] + " " + words[4]) >= 1
    assert not page.problems, page.problems


def test_back_to_a_finished_answer_never_shows_it_streaming(app_server, page):
    """The first page of a conversation is served while its first answer streams; Back
    to it later must show the answer finished, not that stale snapshot."""
    create_first_account(page, app_server)
    page.get_by_label("Message").fill('Quick one\n@fake {"tokens": 20, "tps": 200}')
    page.get_by_role("button", name="Send").click()
    answer = answers(page).first
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    # No reasoning came, so no empty "Reasoning" box is shown (it waits, hidden).
    assert not answer.locator("details.reasoning").is_visible()
    page.get_by_role("link", name="Endpoints").click()
    page.wait_for_url("**/endpoints/")
    page.go_back()
    page.wait_for_url("**/c/**")
    assert answers(page).first.get_attribute("data-status") == "complete"
    assert page.get_by_role("button", name="Send").is_visible()
    assert not page.problems, page.problems
