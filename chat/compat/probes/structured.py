"""The structured output probes: response_format json_object and json_schema."""

from __future__ import annotations

from typing import Any

import jsonschema

from ..base import (
    DIFFERENT,
    INCONCLUSIVE,
    SUPPORTED,
    Context,
    Outcome,
    chat_body,
    once,
    parsed_json,
    refused,
    short,
)
from .common import (
    JSON_LIMIT,
    _ok,
)

JSON_PROMPT = 'Reply with a JSON object with one key "answer" holding a one-word greeting.'
SCHEMA_PROMPT = "Give as JSON the capital city and the population of France."

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


async def probe_json_object(ctx: Context) -> Outcome:
    """``response_format: json_object``: a JSON object is supported; other text is
    different (can't tell when the token limit cut it)."""
    body = chat_body(ctx, JSON_PROMPT, limit=JSON_LIMIT, response_format={"type": "json_object"})
    reply = await once(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="response_format json_object")
    value, problem = parsed_json(reply.text)
    if problem is None and isinstance(value, dict):
        return _ok(SUPPORTED, "The answer is a JSON object", reply)
    if reply.finish_reason == "length":
        return _ok(INCONCLUSIVE, "The answer was cut by the token limit", reply)
    why = "not valid JSON" if problem else "JSON, but not an object"
    return _ok(DIFFERENT, f"Accepted, but the answer is {why}", reply)


async def probe_json_schema(ctx: Context) -> Outcome:
    """``response_format: json_schema`` (strict): an answer valid against the schema
    (checked with jsonschema) is supported; invalid JSON or a schema violation is
    different."""
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "city", "strict": True, "schema": SCHEMA},
    }
    body = chat_body(ctx, SCHEMA_PROMPT, limit=JSON_LIMIT, response_format=response_format)
    reply = await once(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="response_format json_schema")
    value, problem = parsed_json(reply.text)
    if problem is not None:
        if reply.finish_reason == "length":
            return _ok(INCONCLUSIVE, "The answer was cut by the token limit", reply)
        return _ok(DIFFERENT, "Accepted, but the answer is not valid JSON", reply)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(value), key=str)
    if errors:
        summary = f"JSON, but not valid against the schema: {short(errors[0].message, 120)}"
        return _ok(DIFFERENT, summary, reply)
    return _ok(SUPPORTED, "The answer validates against the schema", reply)
