from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import playground.settings as s; print(s.DEBUG, s.SIGNUP_OPEN)"],
        cwd=ROOT,
        env={**clean, "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
    )


def test_defaults_are_safe():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"SIGNUP_OPEN": "2"}, "SIGNUP_OPEN must be a boolean"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL is not a valid database URL"),
        ({"RUN_STALE_AFTER": "soon"}, "RUN_STALE_AFTER must be a number"),
        ({"CSRF_TRUSTED_ORIGINS": "example.com"}, "CSRF_TRUSTED_ORIGINS entries need a scheme"),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-key"}, "FIELD_ENCRYPTION_KEYS entry 1 is not a Fernet"),
        (
            {"FIELD_ENCRYPTION_KEYS": "Jd8nHnE2pa3XGdpOyCdV-mvS3y7oq_Yl1UOfANzAJgA=,short"},
            "FIELD_ENCRYPTION_KEYS entry 2 is not a Fernet",
        ),
        ({"ALLOWED_HOSTS": "https://play.example.com"}, "without scheme or path"),
        ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS must name at least one host"),
    ],
)
def test_bad_values_stop_start_up_with_a_clear_message(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_env_values_are_read():
    result = load_settings(DEBUG="true", SIGNUP_OPEN="yes")
    assert result.stdout.split() == ["True", "True"]


def database_options(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", "import playground.settings as s; print(s.DATABASES['default'])"],
        cwd=ROOT,
        env={**clean, "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_postgresql_gets_a_connection_pool_unless_turned_off():
    url = "postgres://u@db.example:5432/play"
    assert "'pool': {'min_size': 1, 'max_size': 10" in database_options(DATABASE_URL=url)
    assert "'max_size': 3" in database_options(DATABASE_URL=url, DATABASE_POOL_SIZE="3")
    assert "pool" not in database_options(DATABASE_URL=url, DATABASE_POOL_SIZE="0")
    assert "pool" not in database_options()  # SQLite has none
    result = load_settings(DATABASE_URL=url, DATABASE_POOL_SIZE="many")
    assert result.returncode != 0 and "DATABASE_POOL_SIZE" in result.stderr


def test_a_bad_encryption_key_is_not_echoed_in_the_error():
    result = load_settings(FIELD_ENCRYPTION_KEYS="s3cr3t-but-malformed")
    assert result.returncode != 0
    assert "s3cr3t-but-malformed" not in result.stderr


def test_good_encryption_keys_and_hosts_are_accepted():
    from cryptography.fernet import Fernet

    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    result = load_settings(FIELD_ENCRYPTION_KEYS=keys, ALLOWED_HOSTS="play.example.com,*")
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_the_embedded_database_runs_in_wal_mode():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("WAL is the SQLite default; this run is on " + connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 20000


def test_django_is_held_at_its_latest_security_release():
    """pyproject.toml's floor is 5.2.20 (before: 5.2, which let an install keep a 5.2.x
    with published security fixes missing), below 5.3; the venv runs at least that."""
    import tomllib

    import django
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (spec,) = [
        Requirement(r).specifier
        for r in pyproject["project"]["dependencies"]
        if Requirement(r).name.lower() == "django"
    ]
    assert not spec.contains("5.2.19") and spec.contains("5.2.20") and not spec.contains("5.3")
    assert spec.contains(django.get_version())
