"""Markdown while streaming, in a real Chromium: blocks render as they complete, an open
code fence shows as a code block, and the final render does not move the page."""

from __future__ import annotations

import pytest

from chat.fake_upstream import tokenize
from tests.browser.conftest import ARTIFACTS
from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import answers, create_first_account
from tests.security.test_xss_browser import Watch
from tests.security.xss_payloads import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPLY = (
    "Intro with **bold** words.\n\n```python\ndef f(x):\n    return x + 1\n```\n\n"
    + "Then "
    + "a slow sentence that keeps going " * 12
    + "\n\n```js\n"
    + "let a = 1;\n" * 14
    + "```\n\nThe end of the answer, a plain sentence."
)
# Held inside the open js fence (its 7th line) until the test opens the gate: every state
# the tests look for while streaming is on the page then, however slow the machine.
HOLD = len(tokenize(REPLY[: REPLY.index("```js\n") + len("```js\n") + len("let a = 1;\n") * 7]))
# The moment the final render arrives, and just after it is swapped in: the answer's
# height, and the streamed blocks (without the tail) to compare with the final render.
RECORD = """
window.__final = null;
const box = () => document.querySelector('[data-role="assistant"] .msg-body');
document.addEventListener("htmx:wsBeforeMessage", (e) => {
  const head = String(e.detail.message).slice(0, 300);
  if (!head.startsWith("<article") || !head.includes('data-role="assistant"')) return;
  const body = box();
  const blocks = body.cloneNode(true);
  blocks.querySelectorAll(".md-tail").forEach((t) => t.remove());
  window.__final = {before: body.getBoundingClientRect().height, blocks: blocks.innerHTML,
                    streamed: body.innerHTML};
});
document.addEventListener("htmx:wsAfterMessage", () => {
  if (window.__final && window.__final.after === undefined) {
    window.__final.after = box().getBoundingClientRect().height;
    window.__final.html = box().innerHTML;
  }
});
"""


def streaming_has(page, selector: str, timeout: float | None = None) -> None:
    """Wait until the answer, still streaming, shows ``selector`` in its body."""
    page.wait_for_function(
        """(sel) => {
          const a = document.querySelector('[data-role="assistant"]');
          return a && a.dataset.status === "streaming" && a.querySelector(sel) !== null;
        }""",
        arg=f".msg-body {selector}",
        timeout=timeout,
    )


def test_markdown_renders_while_streaming_and_the_end_does_not_reflow(
    app_server, page, fake_upstream_url
):
    page.add_init_script(RECORD)
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    gate = Gate(fake_upstream_url)
    directive = gate.script(reply=REPLY, tps=25, ttft_ms=0, hold_after=HOLD)
    page.get_by_label("Message").fill(f"Show me{directive}")
    page.get_by_role("button", name="Send").click()

    # A finished paragraph is markdown at once; the text after it still streams.
    streaming_has(page, "p > strong")
    # The closed fence is highlighted while the rest streams.
    streaming_has(page, ".code-block code.language-python span.k")
    # The open fence: a code block already, its text growing inside, not highlighted.
    streaming_has(page, ".code-block code.language-js .md-tail")
    page.wait_for_function(
        """() => {
          const t = document.querySelector('.code-block code.language-js .md-tail');
          return t && t.textContent.includes("let a = 1;\\nlet a = 1;");
        }"""
    )
    js = page.locator(".msg-body .code-block code.language-js")
    assert js.locator("span").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "markdown-streaming.png"), full_page=True)

    gate.open()
    answer = answers(page).first
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    page.wait_for_function("() => window.__final && window.__final.after !== undefined")
    final = page.evaluate("window.__final")
    # What streamed is the final render's own HTML, block for block.
    assert final["blocks"] and final["html"].startswith(final["blocks"]), final
    assert "<strong>bold</strong>" in final["blocks"]
    assert 'class="hl language-js"' in final["blocks"]  # highlighted once closed
    # Swapping in the final render moves nothing by more than a few pixels.
    assert abs(final["after"] - final["before"]) <= 4, final
    assert not page.problems, page.problems


def test_a_second_tab_converges_to_the_same_blocks(app_server, page, fake_upstream_url):
    page.add_init_script(RECORD)
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    gate = Gate(fake_upstream_url)
    directive = gate.script(reply=REPLY, tps=25, ttft_ms=0, hold_after=HOLD)
    page.get_by_label("Message").fill(f"Show me{directive}")
    page.get_by_role("button", name="Send").click()
    streaming_has(page, ".code-block code.language-python span.k")
    second = page.context.new_page()
    second.problems = []
    second.add_init_script(RECORD)
    second.goto(page.url)  # mid-answer: a snapshot of the blocks and tail, then frames
    streaming_has(second, ".code-block code.language-python span.k")
    gate.open()
    for tab in (page, second):
        answers(tab).first.and_(tab.locator('[data-status="complete"]')).wait_for()
        tab.wait_for_function("() => window.__final && window.__final.after !== undefined")
    one, two = (tab.evaluate("window.__final") for tab in (page, second))
    assert one["streamed"] == two["streamed"]  # the same DOM just before the final render
    assert one["html"] == two["html"]
    second.close()


def test_untrusted_markup_streamed_as_blocks_never_runs(app_server, page, fake_upstream_url):
    watch = Watch(page, app_server)
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    payloads = "\n\n".join(PAYLOADS[:24]) + "\n\n"
    reply = payloads + "still streaming " * 40
    # Held once every payload is out, until the mid-stream check has been made.
    gate = Gate(fake_upstream_url)
    directive = gate.script(reply=reply, tps=60, ttft_ms=0, hold_after=len(tokenize(payloads)))
    page.get_by_label("Message").fill(f"Payloads{directive}")
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        """() => {
          const a = document.querySelector('[data-role="assistant"]');
          return a && a.dataset.status === "streaming"
            && a.querySelectorAll(".msg-body > p").length >= 10;
        }""",
    )
    watch.check("mid-stream")  # blocks from the server's render, in the page
    gate.open()
    answers(page).first.and_(page.locator('[data-status="complete"]')).wait_for()
    watch.check("final")
    assert watch.dialogs == [] and watch.foreign == [] and watch.findings == []
    assert not page.problems, page.problems
