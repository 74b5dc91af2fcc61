"""The JSON Schemas an import file is checked against first (chat.imports): the shape of
this app's export and of an OpenAI ``messages`` body. The checks a schema can't express
live in chat/imports/checks.py."""

from __future__ import annotations

import re
from typing import Any

from chat import versions
from chat.exports import FORMAT, VERSION
from chat.models import Message, Vote

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
                "api": {"enum": ["", "chat", "responses"]},
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
                "api": {"enum": ["", "responses"]},
                "response_id": {"type": "string", "maxLength": 10000},
                "output_items": {"type": ["array", "null"], "items": {"type": "object"}},
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
