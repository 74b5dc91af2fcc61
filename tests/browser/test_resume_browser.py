"""Runs are not tied to the tab: closing it mid-answer, or watching from a second tab,
shows the one answer the server saved, once."""

from __future__ import annotations

import time

import pytest

from chat.fake_upstream import tokenize
from chat.models import Message
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SLOW = 'Tell me a story\n@fake {"tokens": 80, "tps": 10}'


def flat(text: str) -> str:
    return " ".join(text.split())


def new_tab(context):
    """Another tab of the same browser (same session), collecting page errors."""
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.problems = []
    tab.on("pageerror", lambda exc: tab.problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: tab.problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return tab


def start_slow_answer(tab) -> str:
    tab.get_by_label("Message").fill(SLOW)
    tab.get_by_role("button", name="Send").click()
    answer = answers(tab).first
    answer.and_(tab.locator('[data-status="streaming"]')).wait_for()
    return tab.url


def streamed_text(page) -> str:
    return answers(page).first.locator(".msg-body").first.inner_text()


def watch(page, seconds: float = 30) -> list[str]:
    """The answer's text every ~150 ms while it streams. Status and text are read in one
    go: the final render (markdown, not the raw text) must not pass for a streamed state."""
    samples: list[str] = []
    deadline = time.monotonic() + seconds
    answer = answers(page).first
    while time.monotonic() < deadline:
        status, text = answer.evaluate(
            "el => [el.dataset.status, el.querySelector('.msg-body').innerText]"
        )
        if status != "streaming":
            break
        samples.append(text)
        time.sleep(0.15)
    answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=30_000)
    return samples


def saved_answer() -> Message:
    (message,) = Message.objects.filter(role="assistant")
    assert message.status == "complete"
    return message


def test_closing_the_tab_mid_answer_and_reopening_shows_it_finished_once(app_server, page):
    create_first_account(page, app_server)
    first = new_tab(page.context)
    first.goto(app_server + "/")
    url = start_slow_answer(first)
    first.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 12", arg=answers(first).first.element_handle()
    )
    before = streamed_text(first)
    assert not first.problems, first.problems
    first.close()  # the tab goes away mid-answer; the run does not

    reopened = page
    reopened.goto(url)
    samples = watch(reopened)
    message = saved_answer()
    content = flat(message.content)
    assert len(tokenize(message.content)) == 80  # the whole answer, saved once
    # What the first tab showed is the start of the answer.
    assert before.strip() and content.startswith(flat(before))
    # The reopened tab caught up and kept streaming: every state it showed is a prefix
    # of the saved answer (a repeated or lost piece would break that), and it grew.
    assert samples, "the reopened tab never saw the answer streaming"
    assert all(content.startswith(flat(s)) for s in samples), samples
    assert len(flat(samples[-1])) >= len(flat(samples[0]))
    assert len(flat(samples[0])) >= len(flat(before))
    # The end: the saved rendering, one answer, no duplicated words.
    body = answers(reopened).first.locator(".msg-body").first
    assert body.inner_html().strip() == message.rendered.strip()
    assert answers(reopened).count() == 1
    words = [w for w in flat(body.inner_text()).split() if w not in ("Copy",)]
    assert len(words) <= len(content.split()) + 2  # code labels at most; never doubled
    assert not reopened.problems, reopened.problems


def test_a_second_tab_receives_the_same_answer_live(app_server, page):
    create_first_account(page, app_server)
    url = start_slow_answer(page)
    second = new_tab(page.context)
    second.goto(url)
    answers(second).first.and_(second.locator('[data-status="streaming"]')).wait_for()
    samples = watch(second)
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for(timeout=30_000)
    message = saved_answer()
    content = flat(message.content)
    assert len(samples) >= 3, "the second tab did not see the answer grow"
    assert all(content.startswith(flat(s)) for s in samples), samples
    assert len({flat(s) for s in samples}) >= 2  # it grew while we watched
    for tab in (page, second):
        body = answers(tab).first.locator(".msg-body").first
        assert body.inner_html().strip() == message.rendered.strip()
        assert answers(tab).count() == 1
        assert not tab.problems, tab.problems
