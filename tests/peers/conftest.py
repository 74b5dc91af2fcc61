"""Real servers for the peer tests: a LiteLLM proxy and llama.cpp's llama-server with a
real (tiny) model, each started once per session on a free port.

``python3 tests/peers/install.py`` (or ``make peers``) installs them. Without them these
tests skip, loudly; with ``PLAYGROUND_PEER_TESTS=required`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import (  # noqa: F401 (fixtures, and the hook that marks failures)
    ARTIFACTS,
    browser,
    page,
    pytest_runtest_makereport,
)
from tests.conftest import ROOT, free_port
from tests.peers import install

HERE = Path(__file__).resolve().parent
LOGS = ARTIFACTS / "peers"
LITELLM_KEY = "sk-peers-litellm-master-7f3a"
# mock_response: the same text for every request, whatever it asks; commas on purpose (the
# stop probe needs a sequence that is in the answer).
MOCK_TEXT = "6, 7, 8, 9, 10: a canned answer from the LiteLLM proxy."
LLAMA_ALIAS = "gemma-3-270m"
STARTUP_TIMEOUT = float(os.environ.get("PLAYGROUND_PEERS_STARTUP_TIMEOUT", "240"))


@dataclass
class Peer:
    name: str
    base_url: str  # ends with /v1
    api_key: str = ""
    models: list[str] = field(default_factory=list)
    log: Path | None = None


def _missing(what: str, path: Path) -> None:
    reason = (
        f"PEER TESTS SKIPPED: {what} not installed ({path} missing); "
        "run `make peers` (or python3 tests/peers/install.py) to install and run them"
    )
    if os.environ.get("PLAYGROUND_PEER_TESTS") == "required":
        pytest.fail(reason + " but PLAYGROUND_PEER_TESTS=required")
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, headers: dict | None = None) -> None:
    """Until ``url`` answers 200 (llama-server says 503 while it loads the model)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{log.stem} not ready at {url} in {STARTUP_TIMEOUT:g}s:\n{_log_tail(log)}")


def _start(name: str, args: list[str], ready: str, env: dict | None = None,
           headers: dict | None = None) -> tuple[subprocess.Popen, Path]:  # fmt: skip
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=LOGS, start_new_session=True)  # fmt: skip
    try:
        _wait_ready(ready, proc, log, headers)
    except Exception:
        _stop(proc)
        raise
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session", autouse=True)
def _slow_server_settings() -> Iterator[None]:
    """For the app servers these tests start: a CPU-only llama-server under four probes at
    once needs more than the default 20 s a probe."""
    saved = os.environ.get("COMPAT_PROBE_TIMEOUT")
    os.environ["COMPAT_PROBE_TIMEOUT"] = "120"
    yield
    if saved is None:
        os.environ.pop("COMPAT_PROBE_TIMEOUT", None)
    else:
        os.environ["COMPAT_PROBE_TIMEOUT"] = saved


@pytest.fixture(scope="session")
def relay_upstream() -> Iterator[str]:
    """The built-in fake endpoint on a port, for LiteLLM's relayed model."""
    port = free_port()
    proc, _ = _start(
        "fake-upstream",
        [sys.executable, "-m", "chat.fake_upstream", "--port", str(port)],
        f"http://127.0.0.1:{port}/v1/models",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    yield f"http://127.0.0.1:{port}/v1"
    _stop(proc)


LITELLM_CONFIG = """\
model_list:
  - model_name: mock-chat
    litellm_params:
      model: openai/mock-chat
      api_key: unused
      mock_response: "{mock}"
  - model_name: mock-terse
    litellm_params:
      model: openai/mock-terse
      api_key: unused
      mock_response: "OK"
  - model_name: relay-demo
    litellm_params:
      model: openai/demo
      api_base: {upstream}
      api_key: sk-fake-upstream-key
general_settings:
  master_key: {key}
"""


@pytest.fixture(scope="session")
def litellm(relay_upstream) -> Iterator[Peer]:
    """LiteLLM's proxy with two mock_response models and one relayed to the fake."""
    if not install.LITELLM_BIN.exists():
        _missing("LiteLLM", install.LITELLM_BIN)
    LOGS.mkdir(parents=True, exist_ok=True)
    config = LOGS / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(mock=MOCK_TEXT, upstream=relay_upstream,
                                            key=LITELLM_KEY))  # fmt: skip
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))},
        # Never reach outside: the cost map from the package, no telemetry.
        **install.OFFLINE,
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
    }
    proc, log = _start(
        "litellm",
        [str(install.LITELLM_BIN), "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "1"],
        f"http://127.0.0.1:{port}/health/liveliness",
        env=env,
    )  # fmt: skip
    yield Peer("LiteLLM", f"http://127.0.0.1:{port}/v1", LITELLM_KEY,
               ["mock-chat", "mock-terse", "relay-demo"], log)  # fmt: skip
    _stop(proc)


def llama_command(port: int) -> list[str]:
    return [
        str(install.LLAMA_SERVER),
        "--model", str(install.MODEL),
        "--alias", LLAMA_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        # Weight repacking segfaults at warm-up on CPUs with AMX.
        "--no-repack",
        # The pretrained model rarely stops by itself.
        "--n-predict", "128",
        "--jinja",
        "--chat-template-file", str(HERE / "gemma-tools.jinja"),
        "--parallel", "4",
        "--ctx-size", "8192",
        # One thread: the tests share the cores with Chromium, the app, the other xdist
        # worker (and stress-ng in the flake hunt), and two threads that meet at a barrier
        # after every operation wait for each other whenever one is descheduled. Measured
        # on the 2-core machine under that load: 1.2-1.7 tokens/s with two, 12-22 with one.
        "--threads", "1",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def llama() -> Iterator[Peer]:
    """llama.cpp's llama-server with Gemma 3 270M (Q4_K_M) on the CPU."""
    for what, path in (("llama-server", install.LLAMA_SERVER), ("the GGUF model", install.MODEL)):
        if not path.exists():
            _missing(what, path)
    port = free_port()
    proc, log = _start("llama-server", llama_command(port), f"http://127.0.0.1:{port}/health")
    yield Peer("llama.cpp", f"http://127.0.0.1:{port}/v1", "", [LLAMA_ALIAS], log)
    _stop(proc)
