"""Long unbroken strings (a URL, a hash, base64) wrap inside the answer card, while the
answer streams and once it is rendered alike; a long code line scrolls inside its own
block, never the card or the page.

They used to wrap while streaming (the open block is plain text, which breaks anywhere)
and overflow the card once the markdown was rendered: under the side panel on a desktop,
off screen on a phone, the layout jumping when the answer finished."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.fake_upstream import tokenize
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import answers, create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/ui1-shots")
URL = "https://example.com/" + "very-long-path-segment/" * 12 + "?token=" + "x" * 80
HASH = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" * 2
BASE64 = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ" * 6
CODE = "print('" + "a very long line of code that must not wrap " * 8 + "')"
LONG_PART = f"Fetch <{URL}> then check `{HASH}` against {BASE64}"
REPLY = f"Here is the code:\n\n```python\n{CODE}\n```\n\n{LONG_PART} and that is all."

NO_OVERFLOW = """el => ({scroll: el.scrollWidth, client: el.clientWidth,
  right: el.getBoundingClientRect().right,
  messagesRight: document.getElementById('messages').getBoundingClientRect().right})"""


def fits(answer, when: str) -> None:
    """Nothing in the card is wider than the card, and the card is inside the messages."""
    sizes = answer.evaluate(NO_OVERFLOW)
    assert sizes["scroll"] <= sizes["client"], (when, sizes)
    assert sizes["right"] <= sizes["messagesRight"] + 0.5, (when, sizes)
    widest = answer.evaluate(
        """el => Math.max(...[...el.querySelectorAll('.msg-body *')]
        .filter(e => !e.closest('pre'))
        .map(e => e.getBoundingClientRect().right))"""
    )
    assert widest <= sizes["right"], (when, widest, sizes)


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1440, "height": 900}, {"width": 390, "height": 844}],
    ids=["desktop", "phone"],
)
def test_long_strings_wrap_in_the_card_and_code_scrolls_in_its_block(
    app_server, page, fake_upstream_url, viewport
):
    page.set_viewport_size(viewport)
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    gate = Gate(fake_upstream_url)
    # Held right after the base64: the long strings are still the open block (plain text).
    held = len(tokenize(REPLY[: REPLY.index(BASE64) + len(BASE64)]))
    page.get_by_label("Message").fill(
        "Give me the links" + gate.script(hold_after=held, reply=REPLY)
    )
    page.get_by_role("button", name="Send", exact=True).click()
    answer = answers(page).first
    answer.and_(page.locator('[data-status="streaming"]')).wait_for()
    page.wait_for_function(
        "tail => (document.querySelector('[data-role=assistant] .msg-body').innerText || '')"
        ".includes(tail)",
        arg=BASE64[-40:],
    )
    fits(answer, "streaming")
    tag = "phone" if viewport["width"] < 760 else "desktop"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"long-strings-streaming-{tag}.png"))

    gate.open()
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    assert answer.get_by_text("that is all.").count() == 1
    fits(answer, "rendered")
    assert answer.locator("a[href]").first.get_attribute("href").startswith("https://example.com/")
    # The code line keeps its one line and scrolls inside its pre.
    pre = answer.locator(".code-block pre")
    box = pre.evaluate(
        """el => ({scroll: el.scrollWidth, client: el.clientWidth,
        lines: el.innerText.trim().split('\\n').length,
        right: el.getBoundingClientRect().right,
        cardRight: el.closest('.msg').getBoundingClientRect().right})"""
    )
    assert box["scroll"] > box["client"] and box["lines"] == 1, box
    assert box["right"] <= box["cardRight"], box
    pre.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    assert pre.evaluate("el => el.scrollLeft") > 0
    messages = page.locator("#messages").evaluate("el => el.scrollWidth - el.clientWidth")
    assert messages <= 0
    assert page.evaluate("() => document.scrollingElement.scrollWidth - innerWidth") <= 0
    page.screenshot(path=str(SHOTS / f"long-strings-rendered-{tag}.png"))
    assert not page.problems, page.problems
