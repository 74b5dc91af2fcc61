from __future__ import annotations

import json

import pytest

from chat.tools import (
    TEMPLATES,
    ToolCallAssembler,
    ToolError,
    call_check,
    choice_clean,
    tool_clean,
    tools_from_form,
)

WEATHER = TEMPLATES["weather"]


def test_templates_are_valid_tools():
    for tool in TEMPLATES.values():
        assert tool_clean(tool) == tool


def test_a_bare_function_object_is_wrapped():
    bare = {"name": "f", "parameters": {"type": "object", "properties": {}}}
    assert tool_clean(json.dumps(bare)) == {"type": "function", "function": bare}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{oops", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"type": "retrieval"}, '"type" must be "function"'),
        ({"type": "function"}, 'needs a "function" object'),
        ({"name": "has space"}, '"name" must be'),
        ({"name": "x" * 65}, '"name" must be'),
        (
            {"name": "f", "parameters": {"type": "object", "properties": 3}},
            "not a valid JSON Schema",
        ),
        ({"name": "f", "parameters": {"type": "string"}}, "must describe an object"),
        ({"name": "f", "parameters": {"type": "nonsense"}}, "not a valid JSON Schema"),
        ({"name": "f", "description": 5}, '"description" must be text'),
        ({"name": "f", "strict": "yes"}, '"strict" must be true or false'),
    ],
)
def test_invalid_tools_are_named_precisely(raw, error):
    with pytest.raises(ToolError, match=error):
        tool_clean(raw if isinstance(raw, str) else json.dumps(raw))


def test_the_editor_form_reports_each_row_and_duplicates():
    form = {
        "tool_json": [json.dumps(WEATHER), "{bad", json.dumps(WEATHER)],
        "tool_mock": ["sunny", "", ""],
        "tool_enabled": ["0", "2"],
        "tool_choice": "auto",
    }
    tools, choice, errors = tools_from_form(form)
    assert errors == [
        "Tool 2: not valid JSON (Expecting property name enclosed in double quotes, line 1)",
        "Tool 3: another tool is already called get_weather",
    ]
    ok, choice, errors = tools_from_form(
        {**form, "tool_json": [json.dumps(WEATHER)], "tool_enabled": ["0"]}
    )
    assert errors == [] and choice == "auto"
    assert ok == [{"tool": WEATHER, "enabled": True, "mock": "sunny"}]


def test_tool_choice_names_an_enabled_tool():
    stored = [{"tool": WEATHER, "enabled": True, "mock": ""}]
    assert choice_clean("function:get_weather", stored) == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    with pytest.raises(ToolError, match="not an enabled tool"):
        choice_clean("function:nope", stored)
    with pytest.raises(ToolError):
        choice_clean("sometimes", stored)
    assert choice_clean("", stored) is None


def assemble(fragments):
    assembler = ToolCallAssembler()
    for fragment in fragments:
        assembler.add(*fragment)
    return [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in assembler.finished()
    ]


def test_standard_fragments_join_by_index():
    assert assemble(
        [
            (0, "call_a", "f", ""),
            (1, "call_b", "g", ""),
            (0, None, None, '{"x":'),
            (1, None, None, '{"y": 2}'),
            (0, None, None, " 1}"),
        ]
    ) == [("call_a", "f", '{"x": 1}'), ("call_b", "g", '{"y": 2}')]


def test_index_zero_reused_with_distinct_ids_makes_separate_calls():
    # Ollama-style: every call at index 0, told apart by its id.
    assert assemble(
        [
            (0, "call_a", "f", ""),
            (0, None, None, '{"x": 1}'),
            (0, "call_b", "g", ""),
            (0, None, None, '{"y": 2}'),
        ]
    ) == [("call_a", "f", '{"x": 1}'), ("call_b", "g", '{"y": 2}')]


def test_whole_calls_without_index_or_id_are_told_apart_by_name():
    # Gemini-style: each call complete in one chunk; the client gives them index 0.
    assert assemble([(0, None, "f", '{"x": 1}'), (0, None, "g", '{"y": 2}')]) == [
        ("call_0", "f", '{"x": 1}'),
        ("call_1", "g", '{"y": 2}'),
    ]


def _checked(call):
    """A call as a page shows it: its verdict found as the answer is saved, then read."""
    from chat.toolschema import calls_verdicts

    return call_check(call, calls_verdicts([call], [WEATHER])[0])


def test_call_check_pretty_prints_and_validates_against_the_schema():
    good = _checked(
        {"id": "c", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    )  # noqa: E501
    assert good["error"] == "" and good["arguments"] == '{\n  "city": "Oslo"\n}'
    bad = _checked(
        {"id": "c", "function": {"name": "get_weather", "arguments": '{"town": "Oslo"}'}}
    )  # noqa: E501
    assert "schema" in bad["error"]
    broken = _checked({"id": "c", "function": {"name": "get_weather", "arguments": "{"}})
    assert "not valid JSON" in broken["error"]
    unknown = _checked({"id": "c", "function": {"name": "nope", "arguments": "{}"}})
    assert "not one of the tools sent" in unknown["error"]
