from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.conftest import server_env, start_app_server


def scale_skip_reason() -> str | None:
    """Why the scale-out tests cannot run here, or None when they can."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        return "SCALE TESTS SKIPPED: DATABASE_URL does not point at PostgreSQL"
    if not settings.REDIS_URL:
        return "SCALE TESTS SKIPPED: REDIS_URL is not set (workers share the Redis layer)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = scale_skip_reason()
    if reason is None:
        return
    if os.environ.get("PLAYGROUND_SCALE_TESTS") == "required":
        # CI's PostgreSQL + Redis run sets this, so a lost variable cannot pass as a skip.
        raise pytest.UsageError(reason + " but PLAYGROUND_SCALE_TESTS=required")
    for item in items:
        if item.get_closest_marker("scale"):
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scale: needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)"
    )


@pytest.fixture(scope="module")
def workers(django_db_setup: None) -> Iterator[tuple[str, str]]:
    """Two daphne processes on the test database, sharing the Redis channel layer."""
    env = server_env()  # inherits REDIS_URL and CHANNELS_PREFIX
    started: list[subprocess.Popen] = []
    try:
        urls = []
        for _ in range(2):
            proc, url = start_app_server(env)
            started.append(proc)
            urls.append(url)
        yield urls[0], urls[1]
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
