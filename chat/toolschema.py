"""Tool schemas as untrusted input: how deep they may nest, how many a conversation may
hold, and checking a model's arguments against one without running a regular expression
that can take exponential time.

A tool's ``parameters`` is written by whoever owns the conversation (or an imported
file), and its ``pattern``s are regular expressions. Python's ``re`` backtracks:
``"^(a+)+$"`` against 26 ``a``s and a ``b`` takes seconds, and the check used to run at
every render, on the thread every page shares. So arguments are checked once, when the
answer is saved, with RE2 (linear time, google-re2), and the verdict is stored on the
message; a pattern RE2 cannot run (backreferences, lookaround) is reported as not
checkable instead of being handed to ``re``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import re2

# Deeper than this is refused before jsonschema sees it: its checks recurse once per
# level, and a schema 200 deep ends in RecursionError (a 500) at Python's default limit.
MAX_SCHEMA_DEPTH = 32
# OpenAI refuses a request with more tools than this; a conversation or lane holds no more.
MAX_TOOLS = 128

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is our verdict, not a log line


class SchemaTooDeep(ValueError):
    pass


def depth(value: Any) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0), without recursion
    (the point is to measure what recursion cannot survive)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest > MAX_SCHEMA_DEPTH:
                return deepest  # enough to refuse it: don't walk the rest
            stack.extend((child, level) for child in _children(item))
    return deepest


def _children(item: dict[str, Any] | list[Any]) -> Iterator[Any]:
    return iter(item.values()) if isinstance(item, dict) else iter(item)


def check_depth(schema: Any, what: str = "the schema") -> None:
    if depth(schema) > MAX_SCHEMA_DEPTH:
        raise SchemaTooDeep(f"{what} is nested more than {MAX_SCHEMA_DEPTH} levels deep")


def _patterns(schema: Any) -> Iterator[str]:
    """Every regular expression in a schema: ``pattern`` values, ``patternProperties`` keys."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if isinstance(item.get("pattern"), str):
                yield item["pattern"]
            if isinstance(item.get("patternProperties"), dict):
                yield from (k for k in item["patternProperties"] if isinstance(k, str))
            stack.extend(item.values())


def _compile(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _compile(pattern).search(text) is not None


# jsonschema's own implementations of these keywords call re.search; these are the same
# rules with RE2.
def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    unknown = [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in unknown:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and unknown:
        names = ", ".join(repr(k) for k in sorted(unknown))
        yield jsonschema.ValidationError(f"Additional properties are not allowed ({names})")


def _linear_validator(schema: dict[str, Any]) -> Any:
    base = jsonschema.validators.validator_for(schema)
    return jsonschema.validators.extend(
        base,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


def _not_checkable(schema: dict[str, Any]) -> str:
    """Why these arguments cannot be checked in linear time, or ""."""
    patterns = list(_patterns(schema))
    for pattern in patterns:
        try:
            _compile(pattern)
        except re2.error:
            return f"pattern not checkable: {pattern[:80]!r} needs a feature RE2 lacks"
    # unevaluatedProperties consults patternProperties through re.search, out of reach.
    if patterns and "unevaluatedProperties" in json.dumps(schema):
        return "pattern not checkable: patternProperties with unevaluatedProperties"
    return ""


def arguments_verdict(arguments: str, tool: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The stored verdict on one call's arguments: {"state": "ok" | "error" |
    "unchecked", "error": why}. Linear in the arguments and the schema."""
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError) as exc:
        return _error(f"The arguments are not valid JSON: {exc}")
    if tool is None:
        return _error(f"The model called {name!r}, which is not one of the tools sent.")
    schema = tool.get("parameters") or {}
    if not isinstance(schema, dict):
        return {"state": "unchecked", "error": "the tool's parameters are not a schema"}
    reason = _not_checkable(schema)
    if not reason and depth(schema) > MAX_SCHEMA_DEPTH:
        reason = f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"
    if reason:
        return {"state": "unchecked", "error": reason}
    try:
        errors = sorted(_linear_validator(schema)(schema).iter_errors(args), key=lambda e: e.path)
    except (jsonschema.SchemaError, RecursionError, re2.error) as exc:
        return {"state": "unchecked", "error": f"the schema could not be used: {exc}"}
    if not errors:
        return {"state": "ok", "error": ""}
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "the arguments"
    return _error(f"Does not match the tool's schema at {where}: {first.message}")


def _error(why: str) -> dict[str, Any]:
    return {"state": "error", "error": why}


def calls_verdicts(
    calls: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One verdict per finished call, against the tools the request sent."""
    by_name = {
        (t.get("function") or {}).get("name"): t.get("function") or {}
        for t in tools
        if isinstance(t, dict)
    }
    verdicts = []
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name", "")
        arguments = function.get("arguments", "")
        tool = by_name.get(name)
        text = arguments if isinstance(arguments, str) else ""
        verdicts.append(arguments_verdict(text, tool, name))
    return verdicts
