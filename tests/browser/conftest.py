from __future__ import annotations

import os
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# How long a wait may take before it fails: a safety net, not a speed expectation. Every
# wait is for a condition; on a loaded machine (make flakes, a shared CI runner) a page can
# take several seconds to answer, which Playwright's 5 s default for expect() did not allow.
WAIT_MS = 60_000
# What a failed browser test leaves for its diagnosis (a flake seen once under load cannot
# be run again): its page as it was, and the last socket frames each way with their times.
FAILURES = ARTIFACTS / "failures"
FRAMES_KEPT = 300


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    if report.when == "call":
        item.failed_call = report.failed  # read by the page fixture's teardown
    return report


def _watch_sockets(page: object, frames: deque, sent: deque) -> None:
    start = time.monotonic()

    def watch(ws: object) -> None:
        def note(way: str):
            def add(payload: object) -> None:
                text = payload if isinstance(payload, str) else f"<{len(payload)} bytes>"
                line = f"{time.monotonic() - start:8.3f} {way} {ws.url} {text[:400]}"
                frames.append(line)
                if way == ">":  # few, and what the test did: kept apart from the stream
                    sent.append(line)

            return add

        frames.append(f"{time.monotonic() - start:8.3f} open {ws.url}")
        ws.on("framesent", note(">"))
        ws.on("framereceived", note("<"))
        ws.on("close", lambda _ws: frames.append(f"{time.monotonic() - start:8.3f} close"))

    page.on("websocket", watch)


def _keep_failure(page: object, name: str, frames: deque, sent: deque) -> None:
    FAILURES.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = FAILURES / f"{name}-{stamp}"
    page.screenshot(path=f"{base}.png", full_page=True)
    lines = [f"url: {page.url}", "problems:", *page.problems,
             "frames sent (seconds):", *sent,
             "last socket frames (seconds, > sent, < received):", *frames]  # fmt: skip
    Path(f"{base}.txt").write_text("\n".join(lines) + "\n")
    warnings.warn(f"BROWSER TEST FAILED: its page and socket frames are in {base}.*", stacklevel=1)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        reason = f"BROWSER TESTS SKIPPED: {CHROMIUM} not found (apt-get install -y chromium)"
        if os.environ.get("PLAYGROUND_BROWSER_TESTS") == "required":
            pytest.fail(reason + " but PLAYGROUND_BROWSER_TESTS=required")
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)

    # Sync Playwright keeps an event loop in this thread, which makes Django refuse the
    # test database's own set-up and flush; this process runs no async code meanwhile.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()
            # Later (async) tests must still catch sync database calls in async code.
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.problems = problems
    frames: deque = deque(maxlen=FRAMES_KEPT)
    sent: deque = deque(maxlen=FRAMES_KEPT)
    _watch_sockets(page, frames, sent)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    if getattr(request.node, "failed_call", False):
        _keep_failure(page, request.node.name, frames, sent)
    context.close()
