from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from channels.layers import channel_layers
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"


def _own_layer_prefix() -> None:
    """Under pytest-xdist every worker has its own test database, so user ids repeat
    across workers; on a shared Redis the groups named after them (a user's sidebar, the
    sockets closed at log-out) would cross from one worker's tests into the other's. Each
    worker gets its own prefix, and so do the app servers it starts (they read the env)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    if worker and "prefix" in config and not config["prefix"].endswith(f"-{worker}"):
        config["prefix"] = f"{config['prefix']}-{worker}"
        os.environ["CHANNELS_PREFIX"] = config["prefix"]


_own_layer_prefix()


# Under pytest-xdist (make test: -n 2 --dist loadgroup) some tests must share one worker:
# the peer tests on a real server share it, started once per session in that worker (one
# group per server, so LiteLLM's tests and llama-server's run side by side), and each scale
# test starts two app workers of its own (two such tests at once would be four daphnes).
PEER_SERVERS = ("llama", "litellm")  # the session fixtures of tests/peers/conftest.py


def xdist_group(item: pytest.Item) -> str | None:
    parts = item.path.relative_to(ROOT).parts
    if parts[:2] == ("tests", "scale"):
        return "scale"
    if parts[:2] == ("tests", "peers"):
        fixtures = getattr(item, "fixturenames", ())
        return next((f"peers-{name}" for name in PEER_SERVERS if name in fixtures), "peers")
    return None


# tryfirst: xdist's own hook reads the xdist_group marks in this same hook, and a mark
# added after it has run does nothing (every peer test then started its own servers in
# whichever worker it landed on).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (group := xdist_group(item)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password=PASSWORD)


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("outsider", password=PASSWORD)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture(autouse=True)
def _fresh_async_state():
    """Channel layers and pooled HTTP clients bind to an event loop; each test gets
    its own loop, so each starts with fresh ones. (Sync on purpose: the browser tests'
    sync Playwright must not run inside an asyncio loop.)"""
    from chat.upstream import client as upstream_client

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    upstream_client._clients.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


def server_env() -> dict[str, str]:
    """The environment for an app server process that uses the test database."""
    from django.db import connection

    env = {**os.environ, "PLAYGROUND_TESTING": "1", "SECRET_KEY": settings.SECRET_KEY}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = db["NAME"]
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return env


def start_app_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat.serve", "-b", "127.0.0.1", "-p", str(port),
         "playground.asgi:application"],
        cwd=ROOT,
        env=env or server_env(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/healthz", proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


@pytest.fixture
def app_server(transactional_db) -> Iterator[str]:
    """The real app (daphne, websockets included) in its own process on the test DB."""
    proc, url = start_app_server()
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def fake_upstream_url() -> Iterator[str]:
    """``python -m chat.fake_upstream`` on a free port; yields its base URL (``.../v1``)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat.fake_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_http(base + "/models", proc)
        yield base
    finally:
        proc.kill()
        proc.wait(10)
