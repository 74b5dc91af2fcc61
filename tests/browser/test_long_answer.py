"""A ~100 KB answer in a real Chromium: how long the page's main thread is kept busy.

While the answer streams, no main-thread task may pass 50 ms. Frames used to be applied
by htmx, one more text node each, then the layout was read twice per frame: the browser
laid the whole answer out again for each, work growing with the answer (at 3,000
tokens/s: 8-13 long tasks of up to 160 ms observed on a busy machine, 2.4-2.9 s of
main-thread CPU while streaming). static/app.js now appends them to line segments, of
which only the last is laid out again, and scrolls once per animation frame (0-3 long
tasks observed, 1.8-2.0 s of CPU, no task over ~23 ms of CPU).

Two measures of each task: the long-task observer (PerformanceObserver 'longtask', wall
clock) and a Chromium trace of the same run (each task's main-thread CPU time). The
assertion uses the CPU time: on a shared machine a task's wall time also counts the time
the OS ran other processes (here tasks of 2-13 ms of CPU showed as 60-125 ms long tasks),
which no page can avoid. Both are reported.

The final render (the markdown, swapped in once when the answer completes) is reported,
not held to 50 ms: this answer is two paragraphs of ~54 KB, and a browser lays out a
paragraph whole (~40-60 ms of CPU here). It must stay one task, not several.
The figures are written to test-artifacts/long-answer.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings

from chat import services
from chat.models import EndpointProfile
from tests.bench import harness
from tests.bench.wire import session_key_for
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
window.__finalAt = null;
document.addEventListener("htmx:wsBeforeMessage", (e) => {
  window.__frames += 1;
  const head = String(e.detail.message).slice(0, 300);
  if (head.startsWith("<article") && head.includes('data-status="complete"')) {
    window.__finalAt = performance.now();  // the final render arrives
    performance.mark("final-render");  // the same moment, in the trace
  }
});
"""


# RunTask (each task, with its thread time) is in the disabled-by-default category.
TRACE_CATEGORIES = [
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "blink.user_timing",
]


def main_thread_tasks(trace) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The page's main-thread tasks from a Chromium trace, with their CPU (thread) time:
    those that ended before the final render's frame arrived, and those after it."""
    data = json.loads(trace.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    marks = {e["name"]: e for e in events if e.get("name") in ("sent", "final-render")}
    assert set(marks) == {"sent", "final-render"}, f"marks missing from the trace: {marks}"
    thread = (marks["final-render"]["pid"], marks["final-render"]["tid"])
    sent, final = marks["sent"]["ts"], marks["final-render"]["ts"]
    tasks = [
        {"start": e["ts"], "end": e["ts"] + e["dur"],
         "cpu_ms": round(e.get("tdur", e["dur"]) / 1000, 1), "wall_ms": round(e["dur"] / 1000, 1)}
        for e in events
        if e.get("name") == "RunTask" and e.get("ph") == "X" and "dur" in e
        and (e["pid"], e["tid"]) == thread and e["ts"] >= sent
    ]  # fmt: skip
    return [t for t in tasks if t["end"] < final], [t for t in tasks if t["end"] >= final]


@pytest.fixture
def fake_endpoint(tmp_path) -> Iterator[str]:
    """The fake endpoint in its own process, so planning a huge answer cannot stall the
    app under test."""
    process = harness.start_fake(tmp_path)
    yield process.url
    process.stop()


@pytest.mark.parametrize("tps", [0, 3000], ids=["burst", "3000-tokens-per-s"])
def test_a_100_kb_answer_streams_and_renders(
    app_server, fake_endpoint, page, django_user_model, tps, tmp_path
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
    page.get_by_label("Message").fill(f'A long one\n@fake {{"tokens": {TOKENS}, "tps": {tps}}}')
    trace = tmp_path / "trace.json"
    browser = page.context.browser
    browser.start_tracing(page=page, path=str(trace), categories=TRACE_CATEGORIES)
    sent_at = page.evaluate("performance.mark('sent'), performance.now()")
    page.get_by_label("Message").press("Enter")
    answer = page.locator('[data-role="assistant"]').first
    answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=90_000)
    page.wait_for_timeout(300)  # let the observer deliver the last entries
    browser.stop_tracing()

    text = answer.locator(".msg-body").inner_text()
    assert len(text) > 90_000
    assert page.evaluate("window.__longTaskSupported"), "no longtask timing in this Chromium"
    final_at = page.evaluate("window.__finalAt")
    assert final_at, "the final render was not seen"
    observed = [(s, d) for s, d in page.evaluate("window.__longTasks") if s >= sent_at]
    gaps = [d for at, d in page.evaluate("window.__gaps") if sent_at <= at < final_at]
    assert gaps, "no animation frame ran while the answer streamed"
    streaming, final = main_thread_tasks(trace)
    assert streaming and final, "the trace holds no main-thread task"
    long_streaming = [t for t in streaming if t["cpu_ms"] > 50]
    figures = {
        "tps": tps,
        "answer_chars": len(text),
        "socket_frames": page.evaluate("window.__frames"),
        # A task that ends before the final render's frame arrived ran while streaming.
        "tasks_while_streaming": len(streaming),
        "main_thread_cpu_ms_while_streaming": round(sum(t["cpu_ms"] for t in streaming)),
        "longest_task_cpu_ms_while_streaming": max((t["cpu_ms"] for t in streaming), default=0),
        "tasks_over_50_ms_cpu_while_streaming": len(long_streaming),
        "long_tasks_observed_while_streaming": sum(s + d < final_at for s, d in observed),
        "longest_task_observed_ms_while_streaming": round(
            max((d for s, d in observed if s + d < final_at), default=0.0), 1
        ),
        "longest_frame_gap_ms_while_streaming": round(max(gaps), 1),
        "final_render_tasks_over_50_ms_cpu": sum(t["cpu_ms"] > 50 for t in final),
        "final_render_longest_task_cpu_ms": max((t["cpu_ms"] for t in final), default=0),
        "final_render_longest_task_wall_ms": max((t["wall_ms"] for t in final), default=0),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "long-answer.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[str(tps)] = figures
    path.write_text(json.dumps(found, indent=2))
    print(f"\nlong tasks while a {len(text) // 1000} KB answer streams at tps={tps}: {figures}")
    assert not page.problems, page.problems
    assert not long_streaming, f"main-thread tasks over 50 ms while streaming: {figures}"
    assert figures["final_render_tasks_over_50_ms_cpu"] <= 1, f"a final render in pieces: {figures}"
