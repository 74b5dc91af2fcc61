"""How the upstream package is put together: what importing it loads."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_interpreter(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings"}
    prelude = "import django; django.setup(); import sys; "
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_importing_the_client_does_not_import_the_fake() -> None:
    # The fake serves fake.invalid in-process, but it is loaded when a client is built,
    # not by the production client's import.
    result = fresh_interpreter(
        "import chat.upstream.client; "
        "assert 'chat.fake_upstream' not in sys.modules, 'imported the fake'; "
        "from chat.upstream import fake_app; fake_app(); "
        "assert 'chat.fake_upstream' in sys.modules"
    )
    assert result.returncode == 0, result.stderr


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}".replace("..", ".") for alias in node.names)
    return names


def test_netguard_does_not_import_the_client() -> None:
    # No import loop: what both need (the pooled clients) lives in ``registry``.
    imports = imported_modules(ROOT / "chat" / "upstream" / "netguard.py")
    assert not {".client", ".pool", "chat.upstream.client"} & imports, imports
    assert ".registry" in imports
