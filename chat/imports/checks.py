"""Reading and checking an import file (chat.imports): the JSON parse, then the checks a
JSON Schema can't express (images, choices, tools, tool_choice, timestamps). Each check
appends ``where: what`` lines to ``errors``; nothing here writes to the database."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema
from django.conf import settings
from django.utils.dateparse import parse_datetime

from chat.images import looks_like
from chat.imports.schemas import DATA_IMAGE, MAX_DEPTH, MAX_ERRORS, TOOL_CHOICES
from chat.models import Conversation
from chat.tools import ToolError, tool_clean


class ImportFailed(ValueError):
    """The file was refused; ``errors`` says where and why, one line each."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            shown.append(f"… and {len(errors) - MAX_ERRORS} more problems")
        super().__init__("\n".join(shown))
        self.errors = shown


@dataclass
class ImportResult:
    conversations: list[Conversation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """One conversation, validated, ready to write."""

    fields: dict[str, Any]
    lanes: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    votes: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    default_profile: bool = False


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def schema_errors(schema: dict[str, Any], data: Any, prefix: str = "") -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        # For oneOf, the most specific sub-error says more than "is not valid under any".
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        where = _where([*([prefix] if prefix else []), *best.absolute_path])
        errors.append(f"{where}: {best.message}")
    return errors


def parse(raw: bytes | str) -> Any:
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise ImportFailed(["The file is not UTF-8 text."]) from None
    try:
        data = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except json.JSONDecodeError as exc:
        raise ImportFailed(
            [f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."]
        ) from None
    except RecursionError:
        raise ImportFailed([_too_deep()]) from None
    if _depth(data) > MAX_DEPTH:
        raise ImportFailed([_too_deep()])
    return no_nul(data)


def _too_deep() -> str:
    return f"Not a file this app reads: its arrays and objects nest more than {MAX_DEPTH} deep."


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity: Python's json reads them, JSON and PostgreSQL don't."""
    raise ImportFailed([f"Not valid JSON: {name} is not a number JSON allows."])


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # 1e400
        raise ImportFailed([f"Not valid JSON: the number {literal[:40]} is too large."])
    return number


def _short_int(literal: str) -> int:
    # Python refuses to read more than 4300 digits (a ValueError, not a JSONDecodeError).
    if len(literal.lstrip("-")) > 100:
        raise ImportFailed([f"Not valid JSON: the number {literal[:40]}… is too large."])
    return int(literal)


def _depth(value: Any) -> int:
    """How deep arrays and objects nest (without recursing: the file may be deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in item)
    return deepest


def no_nul(value: Any) -> Any:
    """NUL (U+0000) replaced by U+FFFD, as everywhere text enters the app: PostgreSQL
    stores no NUL in text or jsonb."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [no_nul(item) for item in value]
    if isinstance(value, dict):
        return {no_nul(k): no_nul(v) for k, v in value.items()}
    return value


def _check_image(url: str, where: str, errors: list[str]) -> None:
    if url.startswith("data:"):
        match = DATA_IMAGE.fullmatch(url)
        if not match:
            errors.append(f"{where}: a data URL must be a base64 PNG, JPEG, GIF or WebP image")
            return
        try:
            raw = base64.b64decode(match[2], validate=False)
        except (binascii.Error, ValueError):
            errors.append(f"{where}: the image is not valid base64")
            return
        size = len(raw)
        if not looks_like(match[1], raw):
            errors.append(f"{where}: the data is not really a {match[1]} file")
            return
        if size > settings.IMAGE_MAX_BYTES:
            errors.append(
                f"{where}: the image is {size / 1_048_576:.1f} MB; the limit is "
                f"{settings.IMAGE_MAX_BYTES / 1_048_576:g} MB"
            )
    elif not url.startswith(("http://", "https://")):
        errors.append(f"{where}: an image URL must be http(s) or a data: image")


def check_parts(parts: Any, where: str, errors: list[str]) -> None:
    for i, part in enumerate(parts or []):
        if part.get("type") == "image_url":
            _check_image(part["image_url"]["url"], f"{where}[{i}].image_url.url", errors)


def once(value: Any, seen: set[Any], error: str, errors: list[str]) -> None:
    """``error`` if ``value`` is already in ``seen`` (a repeated position, turn, index or
    name), and ``value`` then counted as seen."""
    if value in seen:
        errors.append(error)
    seen.add(value)


def check_choices(message: dict[str, Any], where: str, errors: list[str]) -> None:
    choices = message.get("choices") or []
    seen: set[int] = set()
    for i, choice in enumerate(choices):
        index = choice["index"]
        once(index, seen, f"{where}.choices[{i}].index: another choice has index {index}", errors)
    if choices and message.get("chosen", 0) not in seen:
        errors.append(f"{where}.chosen: no choice has index {message.get('chosen', 0)}")


def clean_tools(entries: Any, where: str, errors: list[str]) -> Any:
    if entries is None:
        return None
    cleaned, names = [], set()
    for i, entry in enumerate(entries):
        try:
            tool = tool_clean(entry["tool"])
        except ToolError as exc:
            errors.append(f"{where}[{i}].tool: {exc}")
            continue
        name = tool["function"]["name"]
        once(name, names, f"{where}[{i}].tool: another tool is already called {name}", errors)
        cleaned.append(
            {"tool": tool, "enabled": entry.get("enabled", True), "mock": entry.get("mock", "")}
        )
    return cleaned


def check_tool_choice(choice: Any, where: str, errors: list[str]) -> None:
    if choice is None or choice in TOOL_CHOICES:
        return
    is_dict = isinstance(choice, dict)
    name = (choice.get("function") or {}).get("name") if is_dict else None
    if not (is_dict and choice.get("type") == "function" and isinstance(name, str)):
        errors.append(
            f'{where}: must be null, "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}'
        )


def timestamp_value(raw: Any, where: str, errors: list[str]) -> datetime | None:
    if raw is None:
        return None
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None or value.tzinfo is None:
        errors.append(f"{where}: not an ISO 8601 date-time with a time zone")
    return value
