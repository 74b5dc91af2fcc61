"""Conversations into the app: this app's JSON export (see chat/exports.py) or an OpenAI
``messages`` array (bare, or inside a request body with ``model`` and ``tools``).

Everything is validated before anything is written (a JSON Schema for the shape, then
the checks a schema can't express: lane references, tools, parameters, images), errors
name the item and the field (``conversations[0].messages[3].role: ...``), and the writes
happen in one transaction: a file imports whole or not at all.

HTML is never taken from a file: answers are rendered again from their text.

The package: schemas.py (the JSON Schemas), checks.py (parsing and the checks a schema
can't express), native.py (this app's export), openai_messages.py (an OpenAI messages
array) and write.py (the one transaction that writes the plans).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat.exports import FORMAT
from chat.imports.checks import ImportFailed, ImportResult, no_nul, parse
from chat.imports.native import native_plans
from chat.imports.openai_messages import openai_plan
from chat.imports.schemas import (
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_LANES,
    NATIVE_SCHEMA,
    OPENAI_SCHEMA,
)
from chat.imports.write import write

__all__ = [
    "MAX_DEPTH",
    "MAX_ERRORS",
    "MAX_LANES",
    "NATIVE_SCHEMA",
    "OPENAI_SCHEMA",
    "ImportFailed",
    "ImportResult",
    "import_data",
    "parse",
]


def import_data(*, owner: AbstractBaseUser, data: Any) -> ImportResult:
    """Import a parsed document of either format; raises ImportFailed, writing nothing."""
    data = no_nul(data)
    if isinstance(data, dict) and "format" in data:
        plans = native_plans(data)
    elif isinstance(data, list) or (isinstance(data, dict) and "messages" in data):
        plans = [openai_plan(data)]
    else:
        raise ImportFailed(
            [
                'Not a file this app reads: expected a Playground export ("format": '
                f'"{FORMAT}") or an OpenAI messages array ([{{"role": ..., "content": ...}}]).'
            ]
        )
    return write(owner, plans)
