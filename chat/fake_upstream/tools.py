"""Tool calls (scripted or chosen from the offered tools) and structured (JSON) replies."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .text import _words, generate_reply


def _tool_call_deltas(calls: list[dict[str, Any]], style: str = "standard") -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for k, call in enumerate(calls):
        args = call.get("arguments", {})
        args = args if isinstance(args, str) else json.dumps(args)
        if style == "legacy":
            deltas.append({"function_call": {"name": call["name"], "arguments": ""}})
            deltas += [{"function_call": {"arguments": p}} for p in _pieces(args)]
            continue
        index = 0 if style == "reuse_index" else k
        head: dict[str, Any] = {
            "index": index,
            "id": f"call_{k}",
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        if style == "no_type":
            del head["type"]
        if style in ("no_index", "one_chunk"):
            # The whole call at once; Gemini also leaves out the index.
            head["function"]["arguments"] = args
            if style == "no_index":
                del head["index"]
            deltas.append({"tool_calls": [head]})
            continue
        deltas.append({"tool_calls": [head]})
        for piece in _pieces(args):
            frag: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
            deltas.append({"tool_calls": [frag]})
    return deltas


def _pieces(args: str) -> list[str]:
    size = max(1, min(8, math.ceil(len(args) / 3)))
    return [args[i : i + size] for i in range(0, len(args), size)]


def _schema_example(schema: Any, words: list[str]) -> Any:
    """Plausible arguments for a JSON schema, seeded by the prompt's words."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _schema_example(sub, words) for name, sub in props.items()}
    if kind == "array":
        return [_schema_example(schema.get("items") or {"type": "string"}, words)]
    if kind in ("number", "integer"):
        return 42
    if kind == "boolean":
        return True
    capitalised = [w for w in words if w[:1].isupper()]
    return (capitalised or words or ["example"])[-1]


# Words of a tool's description that say nothing about its purpose.
_GENERIC = frozenset(
    _words(
        "about above after again based before being below between call called calls could "
        "details does doing during each every fetch field fields function given gives input "
        "inputs information into itself looks lookup might named number object other output "
        "param params parameter parameters provided provides return returns returned should "
        "something specified string their there these thing those through tool under until "
        "using value values what when where which while with within would your"
    )
)


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _mentions(prompt: str, tool: dict[str, Any]) -> bool:
    """Whether ``prompt`` names the tool (a part of its name, e.g. "weather" for
    get_weather) or its purpose (a telling word of its description, e.g. "forecast" for
    "Get the forecast for a city"), as a model would pick it."""
    lowered = prompt.lower()
    if any(len(part) >= 4 and part in lowered for part in re.split(r"[_\-]", tool["name"].lower())):
        return True
    description = tool.get("description")
    if not isinstance(description, str):
        return False
    said = {_stem(w) for w in re.findall(r"[a-z]{4,}", lowered)}
    purpose = {_stem(w) for w in re.findall(r"[a-z]{5,}", description.lower()) if w not in _GENERIC}
    return bool(said & purpose)


def _auto_tool_calls(body: dict[str, Any], prompt: str) -> list[dict[str, Any]] | None:
    """Call an offered tool the way a model would: when told to, or when the prompt
    names it or its purpose (``_mentions``); only the function a tool_choice names, and
    one call at most under ``parallel_tool_calls: false``."""
    tools = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["name"] == wanted] or tools
    mentioned = [t for t in tools if _mentions(prompt, t)]
    if choice == "auto" and not mentioned:
        return None
    picked = mentioned or tools[:1]
    if body.get("parallel_tool_calls") is False:
        picked = picked[:1]  # one call at most, as OpenAI does
    words = re.findall(r"[A-Za-z][A-Za-z'-]+", prompt)
    return [
        {"name": t["name"], "arguments": _schema_example(t.get("parameters") or {}, words) or {}}
        for t in picked
    ]


def _tool_call_message(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for k, call in enumerate(calls):
        args = call.get("arguments", {})
        out.append(
            {
                "id": f"call_{k}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def _structured_reply(response_format: Any, prompt: str) -> str | None:
    """The JSON answer ``response_format`` asks for; None for plain text."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"answer": generate_reply(prompt, tokens=5).strip()})
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", prompt)
        example = _schema_example(schema, words)
        return json.dumps(example if example is not None else {})
    return None
