"""Real processes for the benchmark: the fake endpoint on its own port and one daphne
app process, both on a database the benchmark owns, plus the data they need."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from chat.models import Conversation, EndpointProfile, Lane
from tests.bench.wire import session_key_for

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def wait_for_http(process: Process, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(process.url + path, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{process.name} did not answer {path} within {timeout:.0f} s")


def _spawn(name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path) -> Process:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, popen, f"http://127.0.0.1:{port}", log)


def start_fake(logdir: Path) -> Process:
    """``python -m chat.fake_upstream`` on a free port: the app reaches it over real HTTP."""
    port = free_port()
    argv = [sys.executable, "-m", "chat.fake_upstream", "--port", str(port), "--ttft-ms", "0"]
    process = _spawn("fake", argv, {**os.environ}, port, logdir)
    wait_for_http(process, "/v1/models")
    return process


def database_url() -> str | None:
    """The URL of the database this process uses, for a child process; None for SQLite."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return None
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def app_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an app process on this process's database and channel layer."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "playground.settings",
        "SECRET_KEY": settings.SECRET_KEY,  # the session cookies are signed with it
        "DATA_DIR": str(data_dir),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",  # DEBUG keeps every query in memory
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        # The benchmark's endpoint is on loopback, which a shared deployment may refuse.
        "ENDPOINT_BLOCK_PRIVATE": "false",
        # One benchmark user drives hundreds of answers a minute: the per-user limits
        # (a guard against floods) would measure themselves, not the relay.
        "RUNS_PER_USER_MAX": "0",
        "ANSWERS_PER_MINUTE": "0",
        # ...and it holds hundreds of sockets open at once.
        "WS_MAX_PER_USER": "0",
    }
    env.pop("ENDPOINT_ALLOWED_HOSTS", None)
    url = database_url()
    if url is None:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(connection.settings_dict["NAME"])
    else:
        env["DATABASE_URL"] = url
    if settings.TESTING:
        env["PLAYGROUND_TESTING"] = "1"  # static files from source, no manifest
    env.update(extra)
    return env


def start_app(env: dict[str, str], logdir: Path, name: str = "app") -> Process:
    port = free_port()
    argv = [
        sys.executable, "-m", "chat.serve", "-b", "127.0.0.1", "-p", str(port),
        "playground.asgi:application",
    ]  # fmt: skip
    process = _spawn(name, argv, env, port, logdir)
    wait_for_http(process, "/healthz")
    return process


@contextlib.contextmanager
def throwaway_database(tmpdir: Path, name: str = "relaybench") -> Iterator[None]:
    """Point this process at a new, migrated database and drop it afterwards: a SQLite
    file in ``tmpdir``, or ``<name>_<pid>`` on the server DATABASE_URL names."""
    test = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        test["NAME"] = str(tmpdir / f"{name}.sqlite3")
    else:
        test["NAME"] = f"{name}_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


@dataclass
class Fixture:
    user: Any
    profile: EndpointProfile
    session_key: str
    conversations: list[Conversation]
    _next: int = 0

    def take(self, count: int) -> list[Conversation]:
        """``count`` conversations no earlier phase used (so every turn has the same
        history); the pool wraps around if it runs out."""
        picked = [
            self.conversations[(self._next + i) % len(self.conversations)] for i in range(count)
        ]
        self._next += count
        return picked


def make_fixture(fake_url: str, conversations: int) -> Fixture:
    """A user with a session, a profile on the fake endpoint, and one-lane chats."""
    user = get_user_model().objects.create_user(f"relaybench-{secrets.token_hex(4)}")
    profile = EndpointProfile.objects.create(
        owner=user,
        name="Relay bench (fake endpoint)",
        base_url=f"{fake_url}/v1",
        default_model="demo",
        models_cache=["demo"],
    )
    convs = Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"bench {i}") for i in range(conversations)]
    )
    Lane.objects.bulk_create(
        [Lane(conversation=c, position=0, profile=profile, model="demo") for c in convs]
    )
    return Fixture(user, profile, session_key_for(user), convs)


def log(text: str) -> None:
    """A benchmark's progress: on stderr, so stdout is the table alone."""
    print(text, file=sys.stderr, flush=True)


def _static_manifest() -> None:
    """The app process renders pages with hashed static names: collect once."""
    from django.core.management import call_command

    root = settings.STATIC_ROOT
    if settings.DEBUG or settings.TESTING or root is None:
        return
    if not (Path(root) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


def run_and_report(
    name: str,
    measure: Any,
    report: Any,
    dump: Any,
    json_path: Path | None,
) -> None:
    """What both benchmark commands do around their measurements: static files collected,
    a throwaway database named ``name`` in a temporary folder, ``measure(workdir)``, its
    table printed (and written to ``json_path``), and a failed run ends the command."""
    import tempfile

    _static_manifest()
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        workdir = Path(tmp)
        with throwaway_database(workdir, name=name):
            results = measure(workdir)
    print(report(results))
    if json_path:
        dump(results, json_path)
    if results.failures:
        raise SystemExit(f"{name}: " + "; ".join(results.failures))
