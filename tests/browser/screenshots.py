"""The README's screenshots, made from the real app: `make screenshots`.

Starts the app (daphne, demo endpoint) on a throwaway SQLite database, drives Debian's
Chromium through a first visit as a new user would, and writes PNGs:
chat-light, chat-dark, comparison (1440 px) and phone (390 px).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from tests.browser.conftest import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "browser" / "screenshots"
PASSWORD = "a-long-passphrase-42"
PROMPTS = [
    "How do I read a large CSV file lazily in Python?",
    "And how would I average one column of it?",
]


def serve(db: Path, port: int) -> subprocess.Popen:
    # PLAYGROUND_TESTING: static files straight from static/, no collectstatic needed.
    env = {**os.environ, "SQLITE_PATH": str(db), "PLAYGROUND_TESTING": "1"}
    env["DJANGO_SETTINGS_MODULE"] = "playground.settings"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "playground.asgi:application"],
        cwd=ROOT, env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the app did not start")


def send_and_wait(page, text: str, turn: int) -> None:
    """Send a message and wait until every answer to that turn has finished."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator(f"#turn-{turn} [data-role=assistant]").last.wait_for()
    page.wait_for_function(
        "n => document.querySelectorAll(`#turn-${n} [data-status=streaming]`).length === 0"
        " && document.querySelectorAll(`#turn-${n} [data-role=assistant]`).length > 0",
        arg=turn,
        timeout=30_000,
    )


def shoot(out: Path, base: str, browser: Any) -> list[Path]:
    """A new user's first visit, photographed; ``browser`` is a Playwright Browser."""
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(base + "/")
    page.locator("#id_username").fill("ada")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create the first account").click()
    page.get_by_label("Message").wait_for()
    for turn, prompt in enumerate(PROMPTS, start=1):
        send_and_wait(page, prompt, turn)
    chat_url = page.url
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        path = out / f"chat-{scheme}.png"
        page.screenshot(path=str(path))
        made.append(path)

    page.emulate_media(color_scheme="light")
    page.goto(base + "/")
    page.get_by_label("Message").wait_for()
    send_and_wait(page, "Hello", 1)
    for lanes in (2, 3):
        page.get_by_role("button", name="+ Lane").click()
        page.locator(".lane-head").nth(lanes - 1).wait_for()
    send_and_wait(page, "Write a function that deduplicates a list, keeping order.", 2)
    path = out / "comparison.png"
    page.screenshot(path=str(path))
    made.append(path)

    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        storage_state=context.storage_state(),
    )
    mobile = phone.new_page()
    mobile.goto(chat_url)
    mobile.locator("[data-role=assistant]").last.wait_for()
    path = out / "phone.png"
    mobile.screenshot(path=str(path))
    made.append(path)
    phone.close()
    context.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve(Path(tmp) / "shots.sqlite3", args.port)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for path in shoot(args.out, f"http://127.0.0.1:{args.port}", browser):
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
