"""Tool schemas as untrusted input: arguments are checked in linear time (RE2), once,
and a schema too deep or too many tools are refused with a clear message."""

from __future__ import annotations

import json

import pytest

from chat.tools import ToolError, tool_clean, tools_clean
from chat.toolschema import MAX_SCHEMA_DEPTH, MAX_TOOLS, arguments_verdict, depth

EVIL = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}


def tool(parameters):
    return {"name": "evil", "parameters": parameters}


def nested(levels):
    schema = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


@pytest.fixture
def python_re_refused(monkeypatch):
    """jsonschema's own pattern keywords call re.search: make any such call fail loudly,
    so a verdict proves RE2 did the matching (Python's re would take minutes here)."""
    import jsonschema._keywords
    import jsonschema._utils

    class NoRe:
        def __getattr__(self, name):
            raise AssertionError(f"Python's re.{name} was used on a tool schema")

    monkeypatch.setattr(jsonschema._keywords, "re", NoRe())
    monkeypatch.setattr(jsonschema._utils, "re", NoRe())


def test_an_evil_pattern_against_a_long_argument_is_checked_with_re2(python_re_refused):
    arguments = json.dumps({"s": "a" * 40 + "!"})
    verdict = arguments_verdict(arguments, tool(EVIL), "evil")
    assert verdict["state"] == "error" and "does not match" in verdict["error"]
    good = arguments_verdict(json.dumps({"s": "a" * 40}), tool(EVIL), "evil")
    assert good == {"state": "ok", "error": ""}


def test_pattern_properties_and_additional_properties_are_matched_with_re2(python_re_refused):
    schema = {
        "type": "object",
        "patternProperties": {"^(a+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    key = "a" * 40
    assert arguments_verdict(json.dumps({key: 1}), tool(schema), "evil")["state"] == "ok"
    wrong = arguments_verdict(json.dumps({key: "x"}), tool(schema), "evil")
    assert wrong["state"] == "error" and "integer" in wrong["error"]
    extra = arguments_verdict(json.dumps({key + "!": 1}), tool(schema), "evil")
    assert extra["state"] == "error" and "Additional properties" in extra["error"]


@pytest.mark.parametrize("pattern", [r"^(a)\1$", r"^(?=a)a+$", r"(?<!b)a"])
def test_a_pattern_re2_cannot_run_is_reported_not_checkable(pattern, python_re_refused):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}}
    verdict = arguments_verdict(json.dumps({"s": "aa"}), tool(schema), "evil")
    assert verdict["state"] == "unchecked"
    assert verdict["error"].startswith("pattern not checkable")


def test_depth_is_measured_without_recursion():
    assert depth("x") == 0 and depth({"a": [1]}) == 2
    assert depth(nested(5000)) > MAX_SCHEMA_DEPTH  # would overflow a recursive walk


def test_a_schema_nested_too_deep_is_refused_with_a_clear_message():
    with pytest.raises(ToolError, match=f"nested more than {MAX_SCHEMA_DEPTH} levels deep"):
        tool_clean(tool(nested(200)))
    with pytest.raises(ToolError, match="nested"):
        tool_clean(json.dumps(tool(nested(200))))
    assert tool_clean(tool(nested(10)))["function"]["parameters"] == nested(10)


def test_json_nested_deeper_than_python_can_parse_is_refused():
    with pytest.raises(ToolError, match="nested too deeply"):
        tool_clean('{"name": "f", "parameters": ' + "[" * 200_000 + "]" * 200_000 + "}")


def test_more_than_128_tools_are_refused():
    entries = [{"json": json.dumps(tool({"type": "object"}) | {"name": f"t{i}"}), "enabled": True}
               for i in range(MAX_TOOLS + 1)]  # fmt: skip
    stored, errors = tools_clean(entries)
    assert len(stored) == MAX_TOOLS and list(errors) == [MAX_TOOLS]
    assert f"at most {MAX_TOOLS}" in errors[MAX_TOOLS]
    assert tools_clean(entries[:MAX_TOOLS])[1] == {}
