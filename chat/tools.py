"""Function tools: definitions as the user writes them, and tool calls as endpoints
stream them (with their known deviations)."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from chat.toolschema import MAX_TOOLS, SchemaTooDeep, check_depth

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

TEMPLATES: dict[str, dict[str, Any]] = {
    "weather": {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    },
    "calculator": {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "e.g. 2 * (3 + 4)"}},
                "required": ["expression"],
            },
        },
    },
    "search": {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web and return the top results.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 10},
                },
                "required": ["query"],
            },
        },
    },
}
TEMPLATE_MOCKS = {
    "weather": '{"city": "Paris", "temperature": 18, "unit": "celsius", "sky": "cloudy"}',
    "calculator": '{"result": 14}',
    "search": '[{"title": "Example Domain", "url": "https://example.com"}]',
}


class ToolError(ValueError):
    pass


def tool_clean(raw: Any) -> dict[str, Any]:
    """One tool definition, in the OpenAI shape; a bare function object is accepted."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ToolError(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
        except RecursionError:
            raise ToolError("nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise ToolError("must be a JSON object")
    if "function" not in raw and "name" in raw:
        raw = {"type": "function", "function": raw}
    if raw.get("type", "function") != "function":
        raise ToolError('"type" must be "function"')
    function = raw.get("function")
    if not isinstance(function, dict):
        raise ToolError('needs a "function" object')
    name = function.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ToolError('"name" must be 1-64 letters, digits, _ or -')
    description = function.get("description", "")
    if not isinstance(description, str):
        raise ToolError('"description" must be text')
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        raise ToolError('"parameters" must be a JSON Schema object')
    try:
        check_depth(parameters, '"parameters"')
    except SchemaTooDeep as exc:
        raise ToolError(str(exc)) from None
    try:
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise ToolError(
            f'"parameters" is not a valid JSON Schema at {where}: {exc.message}'
        ) from None
    if parameters.get("type", "object") != "object":
        raise ToolError('"parameters" must describe an object ("type": "object")')
    cleaned: dict[str, Any] = {"name": name}
    if description:
        cleaned["description"] = description
    cleaned["parameters"] = parameters
    if "strict" in function:
        if not isinstance(function["strict"], bool):
            raise ToolError('"strict" must be true or false')
        cleaned["strict"] = function["strict"]
    return {"type": "function", "function": cleaned}


def tools_clean(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """[{"json", "enabled", "mock"}] from the editor -> stored entries and errors by row."""
    stored: list[dict[str, Any]] = []
    errors: dict[int, str] = {}
    names: set[str] = set()
    for row, entry in enumerate(entries):
        if row >= MAX_TOOLS:
            errors[row] = too_many_tools()
            continue
        try:
            tool = tool_clean(entry.get("json", ""))
        except ToolError as exc:
            errors[row] = str(exc)
            continue
        name = tool["function"]["name"]
        if name in names:
            errors[row] = f"another tool is already called {name}"
            continue
        names.add(name)
        stored.append(
            {"tool": tool, "enabled": bool(entry.get("enabled")), "mock": entry.get("mock", "")}
        )
    return stored, errors


def too_many_tools() -> str:
    return (
        f"more than {MAX_TOOLS} tools: a conversation or lane holds at most {MAX_TOOLS} "
        "(OpenAI's limit)"
    )


def choice_clean(raw: str, tools: list[dict[str, Any]]) -> Any:
    """tool_choice from the editor: auto | none | required | function:<name> | "" (unset)."""
    if raw in ("", None):
        return None
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, str) and raw.startswith("function:"):
        name = raw.removeprefix("function:")
        if name not in {t["tool"]["function"]["name"] for t in tools if t["enabled"]}:
            raise ToolError(f"tool_choice names {name}, which is not an enabled tool")
        return {"type": "function", "function": {"name": name}}
    raise ToolError("tool_choice must be auto, none, required or a tool")


def enabled_tools(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [e["tool"] for e in entries or [] if e.get("enabled")]


def choice_value(choice: Any) -> str:
    """The editor's select value for a stored tool_choice."""
    if isinstance(choice, dict):
        return "function:" + (choice.get("function") or {}).get("name", "")
    return choice or ""


@dataclass
class ToolCallAssembler:
    """Joins streamed tool-call fragments into calls.

    By index, as the spec says, but tolerant of the known deviations: a fragment with a
    new id at an index already holding another call starts a new call (Ollama reuses
    index 0 for parallel calls); a whole call in one chunk without an index (Gemini)
    arrives as a new id or a new name; a missing type is "function"."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    _slot_by_index: dict[int, int] = field(default_factory=dict)

    def add(
        self, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> tuple[int, bool]:
        """Returns (slot, is_new_call)."""
        slot = self._slot_by_index.get(index)
        current = self.calls[slot] if slot is not None else None
        starts_new = current is None or (
            (call_id and current["id"] and call_id != current["id"])
            or (
                name
                and current["function"]["name"]
                and _complete_json(current["function"]["arguments"])
            )
        )
        if starts_new:
            slot = len(self.calls)
            self.calls.append(
                {"id": call_id or "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            self._slot_by_index[index] = slot
        call = self.calls[slot]
        if call_id and not call["id"]:
            call["id"] = call_id
        if name and not call["function"]["name"]:
            call["function"]["name"] = name
        call["function"]["arguments"] += arguments
        return slot, bool(starts_new)

    def finished(self) -> list[dict[str, Any]]:
        for number, call in enumerate(self.calls):
            # An endpoint that sends no id still needs one for the tool result to answer.
            if not call["id"]:
                call["id"] = f"call_{number}"
        return self.calls


def _complete_json(text: str) -> bool:
    if not text.strip():
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def call_check(call: dict[str, Any], verdict: dict[str, Any] | None) -> dict[str, Any]:
    """A finished call shown to the user: pretty arguments and the verdict on them that
    was stored when the answer was saved (chat.toolschema); never validated here, at
    render, where a hostile schema would hold up every page."""
    function = call.get("function") or {}
    name = function.get("name", "")
    raw = function.get("arguments", "")
    view: dict[str, Any] = {"id": call.get("id", ""), "name": name, "arguments": raw, "error": ""}
    with contextlib.suppress(ValueError, RecursionError, TypeError):  # shown as it came
        view["arguments"] = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    if verdict is None:
        view["check"] = "unchecked"
        view["note"] = "not checked (saved before arguments were checked)"
        return view
    view["check"] = verdict.get("state", "unchecked")
    if view["check"] == "error":
        view["error"] = verdict.get("error", "")
    elif view["check"] == "unchecked":
        view["note"] = "not checked: " + verdict.get("error", "")
    return view


def _values(data: Any, key: str) -> list[str]:
    """A form field as a list, from a QueryDict (HTTP) or htmx's JSON (socket)."""
    if hasattr(data, "getlist"):
        return [v for v in data.getlist(key) if isinstance(v, str)]
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def tools_from_form(data: Any) -> tuple[list[dict[str, Any]], Any, list[str]]:
    """The tools editor's fields -> (stored tools, tool_choice, error messages).

    Rows are parallel lists (tool_json, tool_mock); tool_enabled lists the enabled rows.
    """
    jsons = _values(data, "tool_json")
    mocks = _values(data, "tool_mock")
    enabled = set(_values(data, "tool_enabled"))
    entries = [
        {
            "json": text,
            "enabled": str(row) in enabled,
            "mock": mocks[row] if row < len(mocks) else "",
        }
        for row, text in enumerate(jsons)
    ]
    stored, errors = tools_clean(entries)
    messages = [f"Tool {row + 1}: {error}" for row, error in sorted(errors.items())]
    choice = None
    if not errors:
        raw_choice = (_values(data, "tool_choice") or [""])[0]
        try:
            choice = choice_clean(raw_choice, stored)
        except ToolError as exc:
            messages.append(str(exc))
    return stored, choice, messages


def row_errors(data: Any) -> dict[int, str]:
    jsons = _values(data, "tool_json")
    return tools_clean([{"json": text} for text in jsons])[1]
