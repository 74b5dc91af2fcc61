"""`manage.py check --deploy` is clean with the production environment the README
documents (the block is read from the README itself, so the two cannot drift apart)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Security and reliability"
# Each weakening and the warning it must cause (the controls: the check can fail).
WEAKER = {
    "DEBUG": ("true", "security.W018"),
    "SECURE_SSL_REDIRECT": ("false", "security.W008"),
    "SECURE_COOKIES": ("false", "security.W012"),
    "SECURE_HSTS_SECONDS": ("0", "security.W004"),
    "SECRET_KEY": ("only-thirty-two-characters-long!", "security.W009"),
}


def documented_environment() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    assert SECTION in readme, f"README lost its {SECTION!r} section"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    block = next((b for b in blocks if "check --deploy" in b), None)
    assert block, "the production block (with `manage.py check --deploy`) is gone from README"
    exports = re.search(r"export (.*?)(?:\n(?!\s)|$)", block.replace("\\\n", " "), re.S)
    assert exports
    env = dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", exports.group(1)))
    placeholders = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    for name, value in env.items():
        if "…" in value:
            assert name in placeholders, f"no test value for the README's {name}=…"
            env[name] = placeholders[name]
    return env


def start_check(env: dict[str, str], data_dir: Path) -> subprocess.Popen[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PLAYGROUND_", "SECURE_", "ENDPOINT_", "DATABASE_"))
        and k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "REDIS_URL", "SQLITE_PATH")
    }
    data_dir.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, "DATA_DIR": str(data_dir), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def checks(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """Every environment below checked at once (each is a Django start-up)."""
    env = documented_environment()
    envs = {
        "documented": env,
        "weaker": {**env, **{name: value for name, (value, _) in WEAKER.items()}},
        "preload-short": {**env, "SECURE_HSTS_PRELOAD": "true", "SECURE_HSTS_SECONDS": "3600"},
    }
    base = tmp_path_factory.mktemp("deploy")
    procs = {name: start_check(e, base / name) for name, e in envs.items()}
    results = {}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=120)
        results[name] = (proc.returncode, output)
    return results


def test_the_readme_block_is_a_production_environment():
    env = documented_environment()
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "SECURE_COOKIES", "SECURE_HSTS_SECONDS",
                 "SECURE_SSL_REDIRECT", "BEHIND_HTTPS_PROXY", "DEBUG"):  # fmt: skip
        assert name in env, f"the README's production block does not set {name}"
    assert env["DEBUG"] == "false" and "localhost" not in env["ALLOWED_HOSTS"]


def test_the_documented_production_environment_passes_check_deploy(checks):
    code, output = checks["documented"]
    assert code == 0, output
    assert "System check identified no issues" in output, output


def test_a_weaker_environment_is_reported(checks):
    code, output = checks["weaker"]
    assert code != 0
    for name, (_, warning) in WEAKER.items():
        assert warning in output, f"{name}: {warning} not reported\n{output}"


def test_preload_is_opt_in_and_then_checked(checks):
    code, output = checks["preload-short"]
    assert code != 0 and "SECURE_HSTS_PRELOAD needs" in output
