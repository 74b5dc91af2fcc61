"""Conversations into the app: this app's JSON export (see chat/exports.py) or an OpenAI
``messages`` array (bare, or inside a request body with ``model`` and ``tools``).

Everything is validated before anything is written (a JSON Schema for the shape, then
the checks a schema can't express: lane references, tools, parameters, images), errors
name the item and the field (``conversations[0].messages[3].role: ...``), and the writes
happen in one transaction: a file imports whole or not at all.

HTML is never taken from a file: answers are rendered again from their text.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils.dateparse import parse_datetime

from chat import history, versions
from chat.exports import FORMAT, VERSION
from chat.models import Conversation, EndpointProfile, Lane, Message, Vote
from chat.params import check_params
from chat.render import render_markdown
from chat.tools import ToolError, tool_clean

MAX_ERRORS = 25
# Deeper than any file this app writes (a tool's parameter schema nests a few levels); the
# checks and the NUL scrub recurse, so a deeper file is refused before they run.
MAX_DEPTH = 64
MAX_LANES = 6
DATA_IMAGE = re.compile(r"data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]*)")
TOOL_CHOICES = ("auto", "none", "required")

_json_value: dict[str, Any] = {}
_object_or_null = {"type": ["object", "null"]}
_timestamp = {"type": ["string", "null"]}

TOOL_CALL = {
    "type": "object",
    "required": ["id", "function"],
    "properties": {
        "id": {"type": "string", "maxLength": 200},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}
LOGPROB = {
    "type": "object",
    "properties": {"token": {"type": "string"}, "logprob": {"type": ["number", "null"]}},
}
LOGPROBS = {"type": ["array", "null"], "items": LOGPROB}
# One of n > 1 answers. Its text is rendered again here: an "html" key (which no export
# writes) is accepted and thrown away, never shown.
CHOICE = {
    "type": "object",
    "required": ["index", "content"],
    "additionalProperties": False,
    "properties": {
        "index": {"type": "integer", "minimum": 0, "maximum": 127},
        "content": {"type": "string"},
        "finish_reason": {"type": ["string", "null"], "maxLength": 50},
        "logprobs": LOGPROBS,
        "html": {},
    },
}
_count = {"type": ["integer", "null"], "minimum": 0}
_number = {"type": ["number", "null"], "minimum": 0}
# What the pages add up and compare; other keys (a provider's details) are kept as they are.
_TOKEN_COUNTS = (
    "prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "cached_tokens",
)  # fmt: skip
USAGE = {"type": ["object", "null"], "properties": dict.fromkeys(_TOKEN_COUNTS, _count)}
METRICS = {
    "type": "object",
    "properties": {
        "ttft_ms": _number,
        "total_ms": _number,
        "tokens_per_s": _number,
        "cost": _number,
        "completion_tokens": _count,
        "retries": _count,
        "tokens_estimated": {"type": "boolean"},
    },
}
VOTE_LANE = {
    "type": "object",
    "required": ["position", "profile", "model"],
    "properties": {
        "position": {"type": "integer", "minimum": 0, "maximum": MAX_LANES - 1},
        "label": {"type": "string", "maxLength": 10},
        "profile": {"type": "string", "maxLength": 100},
        "model": {"type": "string", "maxLength": 200},
        "params": {"type": "object"},
    },
}
CONTENT_PART = {
    "type": "object",
    "required": ["type"],
    "oneOf": [
        {
            "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
            "required": ["text"],
        },
        {
            "properties": {
                "type": {"const": "image_url"},
                "image_url": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {"url": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
            "required": ["image_url"],
        },
    ],
}

NATIVE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "version", "conversations"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"type": "integer", "minimum": 1, "maximum": VERSION},
        "exported_at": _timestamp,
        "conversations": {"type": "array", "items": {"$ref": "#/$defs/conversation"}},
    },
    "$defs": {
        "conversation": {
            "type": "object",
            "required": ["lanes", "messages"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": ["string", "null"]},
                "title": {"type": "string", "maxLength": 200},
                "mode": {"enum": ["chat", "completion"]},
                "system_prompt": {"type": "string"},
                "tools": {"type": "array", "items": {"$ref": "#/$defs/tool_entry"}},
                "tool_choice": _json_value,
                "pinned": {"type": "boolean"},
                "blind": {"type": "boolean"},
                "created_at": _timestamp,
                "updated_at": _timestamp,
                "lanes": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_LANES,
                    "items": {"$ref": "#/$defs/lane"},
                },
                "messages": {"type": "array", "items": {"$ref": "#/$defs/message"}},
                "votes": {"type": "array", "items": {"$ref": "#/$defs/vote"}},
                "versions": versions.SCHEMA,
            },
        },
        "tool_entry": {
            "type": "object",
            "required": ["tool"],
            "additionalProperties": False,
            "properties": {
                "tool": {"type": "object"},
                "enabled": {"type": "boolean"},
                "mock": {"type": "string"},
            },
        },
        "lane": {
            "type": "object",
            "required": ["position"],
            "additionalProperties": False,
            "properties": {
                "position": {"type": "integer", "minimum": 0, "maximum": MAX_LANES - 1},
                "profile": {
                    "type": ["object", "null"],
                    "required": ["name", "base_url"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "base_url": {"type": "string", "maxLength": 500},
                    },
                },
                "model": {"type": "string", "maxLength": 200},
                "params": {"type": "object"},
                "system_prompt": {"type": ["string", "null"]},
                "tools": {
                    "type": ["array", "null"],
                    "items": {"$ref": "#/$defs/tool_entry"},
                },
            },
        },
        "message": {
            "type": "object",
            "required": ["turn", "role"],
            "additionalProperties": False,
            "properties": {
                "lane": {"type": ["integer", "null"]},
                "turn": {"type": "integer", "minimum": 0, "maximum": 2_147_483_647},
                "role": {"enum": [r.value for r in Message.Role]},
                "model": {"type": "string", "maxLength": 200},
                "content": {"type": "string"},
                "content_parts": {"type": ["array", "null"], "items": CONTENT_PART},
                "reasoning": {"type": "string"},
                "tool_calls": {"type": ["array", "null"], "items": TOOL_CALL},
                "choices": {"type": ["array", "null"], "maxItems": 128, "items": CHOICE},
                "chosen": {"type": "integer", "minimum": 0, "maximum": 32767},
                "logprobs": LOGPROBS,
                "raw_response": _json_value,
                "tool_call_id": {"type": "string", "maxLength": 200},
                "name": {"type": "string", "maxLength": 200},
                "status": {"enum": [s.value for s in Message.Status]},
                "finish_reason": {"type": "string", "maxLength": 50},
                "usage": USAGE,
                "metrics": METRICS,
                "request_body": _object_or_null,
                "error": _object_or_null,
                "attempt": {"type": "integer", "minimum": 0, "maximum": 32767},
                "hidden": {"type": "boolean"},
                "branch": {"type": "integer", "minimum": 0, "maximum": 2_147_483_647},
                "created_at": _timestamp,
            },
        },
        "vote": {
            "type": "object",
            "required": ["turn", "verdict"],
            "additionalProperties": False,
            "properties": {
                "turn": {"type": "integer", "minimum": 0},
                "verdict": {"enum": [v.value for v in Vote.Verdict]},
                "winner_position": {"type": ["integer", "null"]},
                "lanes": {"type": "array", "maxItems": MAX_LANES, "items": VOTE_LANE},
                "created_at": _timestamp,
            },
        },
    },
}

OPENAI_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"type": ["string", "array", "null"], "items": CONTENT_PART},
        "tool_calls": {"type": ["array", "null"], "items": TOOL_CALL},
        "tool_call_id": {"type": "string", "maxLength": 200},
        "name": {"type": "string", "maxLength": 200},
    },
}
OPENAI_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {"type": "array", "minItems": 1, "items": OPENAI_MESSAGE},
        "model": {"type": "string", "maxLength": 200},
        "tools": {"type": "array"},
    },
}


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


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def _schema_errors(schema: dict[str, Any], data: Any, prefix: str = "") -> list[str]:
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
    return _no_nul(data)


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


def _no_nul(value: Any) -> Any:
    """NUL (U+0000) replaced by U+FFFD, as everywhere text enters the app: PostgreSQL
    stores no NUL in text or jsonb."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_no_nul(item) for item in value]
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    return value


def import_data(*, owner: AbstractBaseUser, data: Any) -> ImportResult:
    """Import a parsed document of either format; raises ImportFailed, writing nothing."""
    data = _no_nul(data)
    if isinstance(data, dict) and "format" in data:
        plans = _native_plans(data)
    elif isinstance(data, list) or (isinstance(data, dict) and "messages" in data):
        plans = [_openai_plan(owner, data)]
    else:
        raise ImportFailed(
            [
                'Not a file this app reads: expected a Playground export ("format": '
                f'"{FORMAT}") or an OpenAI messages array ([{{"role": ..., "content": ...}}]).'
            ]
        )
    return _write(owner, plans)


# --------------------------------------------------------------------------- checks


def _check_image(url: str, where: str, errors: list[str]) -> None:
    if url.startswith("data:"):
        match = DATA_IMAGE.fullmatch(url)
        if not match:
            errors.append(f"{where}: a data URL must be a base64 PNG, JPEG, GIF or WebP image")
            return
        try:
            size = len(base64.b64decode(match[2], validate=False))
        except (binascii.Error, ValueError):
            errors.append(f"{where}: the image is not valid base64")
            return
        if size > settings.IMAGE_MAX_BYTES:
            errors.append(
                f"{where}: the image is {size / 1_048_576:.1f} MB; the limit is "
                f"{settings.IMAGE_MAX_BYTES / 1_048_576:g} MB"
            )
    elif not url.startswith(("http://", "https://")):
        errors.append(f"{where}: an image URL must be http(s) or a data: image")


def _check_parts(parts: Any, where: str, errors: list[str]) -> None:
    for i, part in enumerate(parts or []):
        if part.get("type") == "image_url":
            _check_image(part["image_url"]["url"], f"{where}[{i}].image_url.url", errors)


def _check_choices(message: dict[str, Any], where: str, errors: list[str]) -> None:
    choices = message.get("choices") or []
    seen: set[int] = set()
    for i, choice in enumerate(choices):
        if choice["index"] in seen:
            errors.append(f"{where}.choices[{i}].index: another choice has index {choice['index']}")
        seen.add(choice["index"])
    if choices and message.get("chosen", 0) not in seen:
        errors.append(f"{where}.chosen: no choice has index {message.get('chosen', 0)}")


def _clean_tools(entries: Any, where: str, errors: list[str]) -> Any:
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
        if name in names:
            errors.append(f"{where}[{i}].tool: another tool is already called {name}")
        names.add(name)
        cleaned.append(
            {"tool": tool, "enabled": entry.get("enabled", True), "mock": entry.get("mock", "")}
        )
    return cleaned


def _check_tool_choice(choice: Any, where: str, errors: list[str]) -> None:
    if choice is None or choice in TOOL_CHOICES:
        return
    is_dict = isinstance(choice, dict)
    name = (choice.get("function") or {}).get("name") if is_dict else None
    if not (is_dict and choice.get("type") == "function" and isinstance(name, str)):
        errors.append(
            f'{where}: must be null, "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}'
        )


def _timestamp_value(raw: Any, where: str, errors: list[str]) -> datetime | None:
    if raw is None:
        return None
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None or value.tzinfo is None:
        errors.append(f"{where}: not an ISO 8601 date-time with a time zone")
    return value


# --------------------------------------------------------------------------- plans


@dataclass
class _Plan:
    """One conversation, validated, ready to write."""

    fields: dict[str, Any]
    lanes: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    votes: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    default_profile: bool = False


def _native_plans(data: dict[str, Any]) -> list[_Plan]:
    version = data.get("version")
    if data.get("format") == FORMAT and isinstance(version, int) and version > VERSION:
        raise ImportFailed(
            [
                f"version: this file is format version {version}; this app reads up to "
                f"version {VERSION}. Update the app to import it."
            ]
        )
    errors = _schema_errors(NATIVE_SCHEMA, data)
    if errors:
        raise ImportFailed(errors)
    plans, errors = [], []
    for c, conv in enumerate(data["conversations"]):
        where = f"conversations[{c}]"
        mode = conv.get("mode", Conversation.Mode.CHAT)
        tools = _clean_tools(conv.get("tools", []), f"{where}.tools", errors)
        _check_tool_choice(conv.get("tool_choice"), f"{where}.tool_choice", errors)
        lanes, positions = [], set()
        for i, lane in enumerate(conv["lanes"]):
            lw = f"{where}.lanes[{i}]"
            if lane["position"] in positions:
                errors.append(f"{lw}.position: another lane has position {lane['position']}")
            positions.add(lane["position"])
            params, problems = check_params(lane.get("params", {}), mode=mode)
            errors += [f"{lw}.params.{name}: {exc.message}" for name, exc in problems.items()]
            lanes.append(
                {
                    "position": lane["position"],
                    "profile": lane.get("profile"),
                    "model": lane.get("model", ""),
                    "params": params,
                    "system_prompt": lane.get("system_prompt"),
                    "tools": _clean_tools(lane.get("tools"), f"{lw}.tools", errors),
                }
            )
        tree = versions.clean(conv.get("versions"), f"{where}.versions", errors)
        branches = {versions.ROOT, *(int(k) for k in tree.get("branches", {}))}
        messages = []
        for m, message in enumerate(conv["messages"]):
            mw = f"{where}.messages[{m}]"
            if message.get("branch", versions.ROOT) not in branches:
                errors.append(f"{mw}.branch: no version {message['branch']} in versions")
            if message.get("lane") is not None and message["lane"] not in positions:
                errors.append(f"{mw}.lane: no lane has position {message['lane']}")
            if message["role"] == "tool" and not message.get("tool_call_id"):
                errors.append(f"{mw}.tool_call_id: a tool result needs the id of its call")
            _check_parts(message.get("content_parts"), f"{mw}.content_parts", errors)
            _check_choices(message, mw, errors)
            created = _timestamp_value(message.get("created_at"), f"{mw}.created_at", errors)
            messages.append({**message, "created_at": created})
        votes, voted = [], set()
        for v, vote in enumerate(conv.get("votes", [])):
            vw = f"{where}.votes[{v}]"
            if vote["turn"] in voted:
                errors.append(f"{vw}.turn: another vote is on turn {vote['turn']}")
            voted.add(vote["turn"])
            winner = vote.get("winner_position")
            if winner is not None and winner not in positions:
                errors.append(f"{vw}.winner_position: no lane has position {winner}")
            _timestamp_value(vote.get("created_at"), f"{vw}.created_at", errors)
            votes.append(vote)
        plans.append(
            _Plan(
                fields={
                    "title": conv.get("title", ""),
                    "mode": mode,
                    "system_prompt": conv.get("system_prompt", ""),
                    "tools": tools or [],
                    "tool_choice": conv.get("tool_choice"),
                    "pinned": conv.get("pinned", False),
                    "blind": conv.get("blind", False),
                    "versions": tree,
                },
                lanes=lanes,
                messages=messages,
                votes=votes,
                created_at=_timestamp_value(conv.get("created_at"), f"{where}.created_at", errors),
                updated_at=_timestamp_value(conv.get("updated_at"), f"{where}.updated_at", errors),
            )
        )
    if errors:
        raise ImportFailed(errors)
    return plans


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text")
    return content or ""


def _openai_plan(owner: AbstractBaseUser, data: Any) -> _Plan:
    body = {"messages": data} if isinstance(data, list) else data
    errors = _schema_errors(OPENAI_SCHEMA, body)
    if errors:
        # A bare array: say "[3].role", not "messages[3].role".
        if isinstance(data, list):
            errors = [e.removeprefix("messages") for e in errors]
        raise ImportFailed(errors)
    prefix = "" if isinstance(data, list) else "messages"
    tools = []
    for i, raw in enumerate(body.get("tools") or []):
        try:
            tools.append({"tool": tool_clean(raw), "enabled": True, "mock": ""})
        except ToolError as exc:
            errors.append(f"tools[{i}]: {exc}")
    _check_tool_choice(body.get("tool_choice"), "tool_choice", errors)
    system_prompt, messages, turn = "", [], 0
    for i, message in enumerate(body["messages"]):
        where = f"{prefix}[{i}]"
        role = "system" if message["role"] == "developer" else message["role"]
        content = message.get("content")
        if role == "system" and not messages and not system_prompt:
            system_prompt = _text_of(content)  # the opening system message is the prompt
            continue
        if role == "user":
            turn += 1
        turn = max(turn, 1)
        parts = content if isinstance(content, list) else None
        if parts and role != "user":
            if any(p.get("type") != "text" for p in parts):
                errors.append(f"{where}.content: only a user message may carry images")
            parts = None
        _check_parts(parts, f"{where}.content", errors)
        if role == "tool" and not message.get("tool_call_id"):
            errors.append(f"{where}.tool_call_id: a tool result needs the id of its call")
        if message.get("tool_calls") and role != "assistant":
            errors.append(f"{where}.tool_calls: only an assistant message calls tools")
        messages.append(
            {
                "lane": None if role in ("user", "system") else 0,
                "turn": turn,
                "role": role,
                "content": _text_of(content),
                "content_parts": parts,
                "tool_calls": message.get("tool_calls") or None,
                "tool_call_id": message.get("tool_call_id", ""),
                "name": message.get("name", "") if role == "tool" else "",
                "finish_reason": "tool_calls" if message.get("tool_calls") else "",
            }
        )
    if errors:
        raise ImportFailed(errors)
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    line = " ".join(first_user.split())
    title = line[:80] + ("…" if len(line) > 80 else "")
    return _Plan(
        fields={
            "title": title or "Imported conversation",
            "system_prompt": system_prompt,
            "tools": tools,
            "tool_choice": body.get("tool_choice"),
        },
        lanes=[{"position": 0, "profile": None, "model": body.get("model", "")}],
        messages=messages,
        default_profile=True,
    )


# --------------------------------------------------------------------------- writing


class _Profiles:
    """An export names an endpoint by name and base URL: find the importer's own."""

    def __init__(self, owner: AbstractBaseUser) -> None:
        self.owner = owner
        self.all = list(EndpointProfile.objects.filter(owner=owner))
        self._default: EndpointProfile | None = None

    def find(self, ref: dict[str, str] | None) -> EndpointProfile | None:
        if not ref:
            return None
        exact = [p for p in self.all if p.name == ref["name"] and p.base_url == ref["base_url"]]
        same_url = [p for p in self.all if p.base_url.rstrip("/") == ref["base_url"].rstrip("/")]
        return (exact or same_url or [None])[0]

    def default(self) -> EndpointProfile | None:
        if self._default is None:
            from chat.services import profile_default

            self._default = profile_default(owner=self.owner)
        return self._default


def _rendered(mode: str, message: dict[str, Any]) -> tuple[str, Any]:
    """HTML made here from the text (never read from the file), and choices to match."""
    # Whatever the file says a choice's HTML is goes; chat mode renders it from the text.
    choices = [
        {k: v for k, v in c.items() if k != "html"} for c in message.get("choices") or []
    ] or message.get("choices")
    if message["role"] != "assistant" or mode != Conversation.Mode.CHAT:
        return "", choices
    if choices:
        choices = [{**c, "html": str(render_markdown(c["content"]))} for c in choices]
    content = message.get("content", "")
    return (str(render_markdown(content)) if content else ""), choices


def _write(owner: AbstractBaseUser, plans: list[_Plan]) -> ImportResult:
    result = ImportResult()
    profiles = _Profiles(owner)
    with transaction.atomic():
        for plan in plans:
            conversation = Conversation.objects.create(owner=owner, **plan.fields)
            lanes: dict[int, Lane] = {}
            for spec in plan.lanes:
                profile = (
                    profiles.default() if plan.default_profile else profiles.find(spec["profile"])
                )
                model = spec.get("model") or (profile.default_model if profile else "")
                lanes[spec["position"]] = Lane.objects.create(
                    conversation=conversation,
                    position=spec["position"],
                    profile=profile,
                    model=model,
                    params=spec.get("params") or {},
                    system_prompt=spec.get("system_prompt"),
                    tools=spec.get("tools"),
                )
                if spec.get("profile") and profile is None:
                    result.notes.append(
                        f"“{conversation}”: no endpoint of yours is called "
                        f"“{spec['profile']['name']}” at {spec['profile']['base_url']}; "
                        "pick one before sending."
                    )
            rows = []
            for spec in plan.messages:
                rendered, choices = _rendered(plan.fields.get("mode", "chat"), spec)
                status = spec.get("status", Message.Status.COMPLETE)
                if status == Message.Status.STREAMING:
                    status = Message.Status.INTERRUPTED  # its run is not coming back
                row = Message(
                    conversation=conversation,
                    lane=lanes.get(spec["lane"]) if spec.get("lane") is not None else None,
                    rendered=rendered,
                    choices=choices,
                    status=status,
                )
                for name in (
                    "turn", "role", "model", "content", "content_parts", "reasoning",
                    "tool_calls", "chosen", "logprobs", "raw_response", "tool_call_id", "name",
                    "finish_reason", "usage", "metrics", "request_body", "error", "attempt",
                    "hidden", "branch",
                ):  # fmt: skip
                    if name in spec and spec[name] is not None:
                        setattr(row, name, spec[name])
                rows.append(row)
            created = Message.objects.bulk_create(rows, batch_size=500)
            _restore_times(created, [spec.get("created_at") for spec in plan.messages])
            for vote in plan.votes:
                made = Vote.objects.create(
                    owner=owner,
                    conversation=conversation,
                    turn=vote["turn"],
                    verdict=vote["verdict"],
                    winner_position=vote.get("winner_position"),
                    lanes=vote.get("lanes", []),
                )
                when = parse_datetime(vote["created_at"]) if vote.get("created_at") else None
                if when:
                    Vote.objects.filter(pk=made.pk).update(created_at=when)
            stamps = {k: v for k, v in (("created_at", plan.created_at),
                                        ("updated_at", plan.updated_at)) if v}  # fmt: skip
            if stamps:
                # Keeps its place in the history (auto_now would make it the newest).
                Conversation.objects.filter(pk=conversation.pk).update(**stamps)
            if plan.default_profile and not lanes[0].profile:
                result.notes.append(f"“{conversation}”: add an endpoint to continue it.")
            result.conversations.append(conversation)
        if result.conversations:
            history.sidebar_changed(owner_id=owner.pk)
    return result


def _restore_times(rows: list[Message], times: list[datetime | None]) -> None:
    pairs = [(row.pk, when) for row, when in zip(rows, times, strict=True) if when and row.pk]
    for start in range(0, len(pairs), 200):
        chunk = pairs[start : start + 200]
        Message.objects.filter(pk__in=[pk for pk, _ in chunk]).update(
            created_at=Case(
                *[When(pk=pk, then=Value(when)) for pk, when in chunk],
                output_field=DateTimeField(),
            )
        )
