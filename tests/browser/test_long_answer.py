"""A ~100 KB answer in a real Chromium: how long the page's main thread is kept busy.

The long tasks (PerformanceObserver 'longtask': main-thread work over 50 ms) seen while
the answer streams and renders are written to test-artifacts/long-answer.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings

from chat import services
from chat.bench import harness
from chat.bench.wire import session_key_for
from chat.models import EndpointProfile
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKENS = 18_000  # about 100 KB of text
OBSERVER = """
window.__longTasks = [];
window.__longTaskSupported = PerformanceObserver.supportedEntryTypes.includes("longtask");
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({type: "longtask", buffered: true});
// The longest gap between two animation frames: main-thread blocks under 50 ms too.
window.__gaps = [];
let last = null;
function tick(now) {
  if (last !== null) window.__gaps.push([now, now - last]);
  last = now;
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
window.__frames = 0;
document.addEventListener("htmx:wsAfterMessage", () => { window.__frames += 1; });
"""


@pytest.fixture
def fake_endpoint(tmp_path) -> Iterator[str]:
    """The fake endpoint in its own process, so planning a huge answer cannot stall the
    app under test."""
    process = harness.start_fake(tmp_path)
    yield process.url
    process.stop()


@pytest.mark.parametrize("tps", [0, 3000], ids=["burst", "3000-tokens-per-s"])
def test_a_100_kb_answer_streams_and_renders(
    app_server, fake_endpoint, page, django_user_model, tps
):
    user = django_user_model.objects.create_user("reader", password="a-long-passphrase-42")
    profile = EndpointProfile.objects.create(
        owner=user,
        name="Fake on a port",
        base_url=f"{fake_endpoint}/v1",
        default_model="demo",
        models_cache=["demo"],
    )
    conversation = services.conversation_create(owner=user, profile=profile, model="demo")
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user), "url": app_server}]
    )
    page.add_init_script(OBSERVER)
    page.goto(f"{app_server}/c/{conversation.pk}/")
    page.get_by_label("Message").wait_for()
    sent_at = page.evaluate("performance.now()")
    page.get_by_label("Message").fill(f'A long one\n@fake {{"tokens": {TOKENS}, "tps": {tps}}}')
    page.get_by_label("Message").press("Enter")
    answer = page.locator('[data-role="assistant"]').first
    answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=90_000)
    page.wait_for_timeout(300)  # let the observer deliver the last entries

    text = answer.locator(".msg-body").inner_text()
    assert len(text) > 90_000
    assert page.evaluate("window.__longTaskSupported"), "no longtask timing in this Chromium"
    tasks = [d for start, d in page.evaluate("window.__longTasks") if start >= sent_at]
    gaps = [d for at, d in page.evaluate("window.__gaps") if at >= sent_at]
    assert gaps, "no animation frame ran while the answer streamed"
    figures = {
        "tps": tps,
        "answer_chars": len(text),
        "socket_frames": page.evaluate("window.__frames"),
        "long_tasks": len(tasks),
        "longest_task_ms": round(max(tasks, default=0.0), 1),
        "long_tasks_total_ms": round(sum(tasks), 1),
        "longest_frame_gap_ms": round(max(gaps), 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "long-answer.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[str(tps)] = figures
    path.write_text(json.dumps(found, indent=2))
    print(f"\nlong tasks while a {len(text) // 1000} KB answer streams at tps={tps}: {figures}")
    assert not page.problems, page.problems
