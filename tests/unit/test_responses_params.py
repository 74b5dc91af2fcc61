"""The Responses API's side of the parameter table: the extra body merged, not replacing
what the panel set; tools asked the same of both APIs; saved values whose extra body holds
a parameter that has its own control now."""

from __future__ import annotations

from chat.params import check_params, responses_params
from chat.request_body import responses_tools


def test_the_extra_body_merges_into_text_reasoning_and_include():
    values = {
        "response_format": "json_object",
        "reasoning_effort": "low",
        "logprobs": True,
        "extra_body": {
            "text": {"verbosity": "low"},
            "reasoning": {"summary": "detailed"},
            "include": ["web_search_call.results", "message.output_text.logprobs"],
            "top_k": 4,
        },
    }
    body = responses_params(values, quirks={})
    assert body["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert body["reasoning"] == {"effort": "low", "summary": "detailed"}
    assert body["include"] == ["message.output_text.logprobs", "web_search_call.results"]
    assert body["top_k"] == 4


def test_a_tool_is_not_strict_on_responses_unless_it_says_so():
    loose = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    strict = {"type": "function", "function": {"name": "g", "strict": True}}
    assert responses_tools([loose, strict]) == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
        {"type": "function", "name": "g", "strict": True},
    ]


def test_saved_values_move_a_parameter_out_of_the_extra_body_to_its_control():
    cleaned, errors = check_params(
        {"extra_body": {"reasoning_effort": "high", "metadata": {"a": "b"}, "top_k": 3}}
    )
    assert errors == {}
    assert cleaned == {
        "reasoning_effort": "high",
        "metadata": {"a": "b"},
        "extra_body": {"top_k": 3},
    }
    # Typed in the panel, the clash is said, as for any parameter with a control.
    _, errors = check_params({"extra_body": '{"reasoning_effort": "high"}'})
    assert "own control" in errors["extra_body"].message


def _answer(content, items, calls=None):
    from chat.models import Message

    return Message(role="assistant", content=content, output_items=items, tool_calls=calls)


REASONING = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
PART = {"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [PART]}  # fmt: skip


def test_an_answer_as_it_came_goes_back_as_its_items_with_their_ids():
    from chat.request_body import message_items

    assert message_items(_answer("Hi", [REASONING, MESSAGE])) == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "id": "msg_1",
         "content": [{"type": "output_text", "text": "Hi"}]},
    ]  # fmt: skip
    # Reasoning the server cannot read back is left out, and the ids with it.
    opaque = {"id": "rs_2", "type": "reasoning", "summary": []}
    (item,) = message_items(_answer("Hi", [opaque, MESSAGE]))
    assert item == {"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hi"}]}  # fmt: skip
    # Cut after its reasoning: nothing follows it, so it is not sent.
    assert message_items(_answer("", [REASONING])) == []


def test_an_edited_answer_goes_back_as_shown_without_its_reasoning():
    from chat.request_body import message_items

    assert message_items(_answer("Hello, edited", [REASONING, MESSAGE])) == [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello, edited"}]},
    ]  # fmt: skip
