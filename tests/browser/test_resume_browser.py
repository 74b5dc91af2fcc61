"""Runs are not tied to the tab: closing it mid-answer, or watching from a second tab,
shows the one answer the server saved, once.

The answer streams from the fake endpoint on a port of its own, and holds after
HELD tokens until the test opens its gate: "still streaming when the other tab looks"
is then a fact, not a race against a busy machine."""

from __future__ import annotations

import pytest

from chat.fake_upstream import tokenize
from chat.models import EndpointProfile, Message
from tests.browser.conftest import WAIT_MS
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TOKENS, HELD = 80, 30


def flat(text: str) -> str:
    return " ".join(text.split())


def new_tab(context):
    """Another tab of the same browser (same session), collecting page errors."""
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.problems = []
    tab.on("pageerror", lambda exc: tab.problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: tab.problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return tab


def start_held_answer(tab, gate: Gate) -> str:
    """Send the story; once it shows more than 12 words (it holds at HELD tokens)."""
    tab.get_by_label("Message").fill(
        f"Tell me a story{gate.script(tokens=TOKENS, tps=20, hold_after=HELD)}"
    )
    tab.get_by_role("button", name="Send").click()
    answer = answers(tab).first
    answer.and_(tab.locator('[data-status="streaming"]')).wait_for()
    tab.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 12", arg=answer.element_handle()
    )
    return tab.url


def streamed_text(page) -> str:
    return answers(page).first.locator(".msg-body").first.inner_text()


def state(page) -> tuple[str, str]:
    """The answer's status and text, read in one go: the final render (markdown, not the
    raw text) must not pass for a streamed state."""
    return answers(page).first.evaluate(
        "el => [el.dataset.status, el.querySelector('.msg-body').innerText]"
    )


def held_then_finished(page, gate: Gate) -> list[str]:
    """The texts the page shows streaming: one while the answer is held (it has caught up
    with the HELD tokens), then each read after the gate opens, until it completes."""
    answer = answers(page).first
    answer.and_(page.locator('[data-status="streaming"]')).wait_for()
    page.wait_for_function(
        "([el, n]) => el.innerText.split(/\\s+/).length >= n",
        arg=[answer.locator(".msg-body").first.element_handle(), 20],
    )
    status, text = state(page)
    assert status == "streaming"  # held: it cannot have finished
    samples = [text]
    gate.open()
    while True:  # as often as the page can be read; nothing depends on how often
        status, text = state(page)
        if status != "streaming":
            break
        samples.append(text)
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    return samples


def saved_answer(api: str = "chat") -> Message:
    (message,) = Message.objects.filter(role="assistant")
    assert message.status == "complete"
    assert message.api == ("responses" if api == "responses" else "")
    return message


def on_api(api: str) -> None:
    """New lanes of the (only) endpoint speak ``api``: the same run path either way."""
    EndpointProfile.objects.update(quirks={"default_api": api})


# Chat Completions, and the Responses API's typed events: resuming is the same run's.
APIS = pytest.mark.parametrize("api", ["chat", "responses"])


@APIS
def test_closing_the_tab_mid_answer_and_reopening_shows_it_finished_once(
    app_server, page, fake_upstream_url, api
):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    on_api(api)
    gate = Gate(fake_upstream_url)
    first = new_tab(page.context)
    first.goto(app_server + "/")
    url = start_held_answer(first, gate)
    before = streamed_text(first)
    assert not first.problems, first.problems
    first.close()  # the tab goes away mid-answer; the run does not

    reopened = page
    reopened.goto(url)
    samples = held_then_finished(reopened, gate)
    message = saved_answer(api)
    content = flat(message.content)
    assert len(tokenize(message.content)) == TOKENS  # the whole answer, saved once
    # What the first tab showed is the start of the answer.
    assert before.strip() and content.startswith(flat(before))
    # The reopened tab caught up and kept streaming: every state it showed is a prefix
    # of the saved answer (a repeated or lost piece would break that), and it grew.
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


@APIS
def test_a_second_tab_receives_the_same_answer_live(app_server, page, fake_upstream_url, api):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    on_api(api)
    page.reload()
    gate = Gate(fake_upstream_url)
    url = start_held_answer(page, gate)
    second = new_tab(page.context)
    second.goto(url)
    samples = held_then_finished(second, gate)
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()
    message = saved_answer(api)
    content = flat(message.content)
    # Live: it showed the answer streaming (held mid-way: a strict, growing prefix), then
    # finished without a reload; every state it showed is a prefix of the saved answer.
    assert 0 < len(flat(samples[0])) < len(content)
    assert all(content.startswith(flat(s)) for s in samples), samples
    for tab in (page, second):
        body = answers(tab).first.locator(".msg-body").first
        assert body.inner_html().strip() == message.rendered.strip()
        assert answers(tab).count() == 1
        assert not tab.problems, tab.problems
