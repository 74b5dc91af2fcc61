"""The Responses API's typed events to the app's events: what each server really sends
(OpenAI's full form, llama.cpp's without sequence_number or output_index), and the
deviations a tolerant reader must survive."""

from __future__ import annotations

import json

from chat.upstream import (
    Finish,
    Logprobs,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
)
from chat.upstream.responses_api import ResponsesEvents, whole_response_events

USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 9},
    "total_tokens": 42,
}


def feed(events: list[dict], reader: ResponsesEvents | None = None) -> tuple[list, bool]:
    reader = reader or ResponsesEvents()
    out, done = [], False
    for event in events:
        got, done = reader.chunk(json.dumps(event), event.get("type", ""))
        out += got
        if done:
            break
    return out, done


def text(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


def calls(events: list) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = out.setdefault(e.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or e.id
            call["name"] = call["name"] or e.name
            call["arguments"] += e.arguments
    return out


def completed(output: list[dict], usage: dict | None = USAGE, status="completed") -> dict:
    return {
        "type": f"response.{status}",
        "response": {"id": "resp_1", "status": status, "output": output, "usage": usage},
    }


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hello world"}],
}


def test_openais_full_stream_gives_text_logprobs_usage_and_the_output_items():
    lp = [{"token": "Hello", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -2.0}]}]
    stream = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1"}},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
         "item": {**MESSAGE, "content": []}},
        {"type": "response.content_part.added", "sequence_number": 2, "item_id": "msg_1",
         "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": ""}},
        {"type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_1",
         "output_index": 0, "content_index": 0, "delta": "Hello", "logprobs": lp},
        {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1",
         "output_index": 0, "content_index": 0, "delta": " world", "logprobs": []},
        {"type": "response.output_text.done", "sequence_number": 5, "item_id": "msg_1",
         "output_index": 0, "content_index": 0, "text": "Hello world"},
        {"type": "response.output_item.done", "sequence_number": 6, "output_index": 0,
         "item": MESSAGE},
        completed([MESSAGE]),
    ]  # fmt: skip
    events, done = feed(stream)
    assert done and text(events) == "Hello world"
    (logprobs,) = [e for e in events if isinstance(e, Logprobs)]
    assert logprobs.tokens == [{"token": "Hello", "logprob": -0.1, "top": [
        {"token": "Hi", "logprob": -2.0}]}]  # fmt: skip
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 30, 42)
    assert usage.raw["completion_tokens_details"] == {"reasoning_tokens": 9}
    assert usage.raw["prompt_tokens_details"] == {"cached_tokens": 4}
    assert [e.reason for e in events if isinstance(e, Finish)] == ["stop"]
    (end,) = [e for e in events if isinstance(e, ResponseDone)]
    assert end.id == "resp_1" and end.output == [MESSAGE] and end.status == "completed"


def test_llama_cpp_events_without_sequence_or_output_index():
    """As llama-server sends them: reasoning_text deltas, item ids only, and a
    function call whose arguments arrive under its item id."""
    stream = [
        {"type": "response.created", "response": {"id": "resp_x", "status": "in_progress"}},
        {"type": "response.output_item.added", "item": {"id": "rs_1", "type": "reasoning",
         "summary": [], "content": []}},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "delta": "Think"},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "delta": "ing"},
        {"type": "response.output_item.added", "item": {"id": "fc_a", "type": "function_call",
         "call_id": "call_a", "name": "get_weather", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": '{"ci'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a",
         "delta": 'ty": "Paris"}'},
        {"type": "response.output_item.done", "item": {"id": "fc_a", "type": "function_call",
         "call_id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"type": "response.completed", "response": {"id": "resp_x", "status": "completed",
         "output": [], "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}}},
    ]  # fmt: skip
    events, done = feed(stream)
    assert done and reasoning(events) == "Thinking" and text(events) == ""
    assert calls(events) == {0: {"id": "call_a", "name": "get_weather",
                                 "arguments": '{"city": "Paris"}'}}  # fmt: skip
    assert [e.reason for e in events if isinstance(e, Finish)] == ["tool_calls"]


def test_items_sent_only_whole_still_give_their_text_once():
    """No deltas at all (a server that sends each item finished), then the same items
    again in response.completed: the text and the call come once."""
    call = {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f",
            "arguments": "{}"}  # fmt: skip
    stream = [
        {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.output_item.done", "output_index": 1, "item": call},  # repeated
        completed([MESSAGE, call]),
    ]
    events, _ = feed(stream)
    assert text(events) == "Hello world"
    assert calls(events) == {0: {"id": "c1", "name": "f", "arguments": "{}"}}


def test_done_text_fills_in_what_the_deltas_missed_and_never_repeats():
    stream = [
        {"type": "response.output_text.delta", "item_id": "m", "delta": "Hel"},
        {"type": "response.output_text.done", "item_id": "m", "text": "Hello"},
        {"type": "response.output_text.done", "item_id": "m", "text": "Hello"},
    ]
    events, done = feed(stream)
    assert text(events) == "Hello" and not done


def test_arguments_before_their_item_keep_the_calls_name():
    """Out of order: an arguments delta before output_item.added names the call."""
    stream = [
        {"type": "response.function_call_arguments.delta", "item_id": "fc_9", "delta": "{}"},
        {"type": "response.output_item.added", "item": {"id": "fc_9", "type": "function_call",
         "call_id": "call_9", "name": "lookup", "arguments": ""}},
    ]  # fmt: skip
    events, _ = feed(stream)
    assert calls(events) == {0: {"id": "call_9", "name": "lookup", "arguments": "{}"}}


def test_unknown_events_are_ignored_and_do_not_end_the_stream():
    events, done = feed([
        {"type": "response.web_search_call.in_progress", "item_id": "ws"},
        {"type": "response.something_new", "payload": [1, 2]},
        {"type": "keepalive"},
    ])  # fmt: skip
    assert events == [] and not done


def test_incomplete_is_finished_with_its_reason():
    events, done = feed([
        {"type": "response.output_text.delta", "item_id": "m", "delta": "Once upon"},
        {"type": "response.incomplete", "response": {
            "id": "r", "status": "incomplete", "output": [],
            "incomplete_details": {"reason": "max_output_tokens"}, "usage": USAGE}},
    ])  # fmt: skip
    assert done and [e.reason for e in events if isinstance(e, Finish)] == ["max_output_tokens"]


def test_failed_and_error_events_become_errors_with_the_servers_words():
    events, done = feed([{"type": "response.failed", "response": {
        "id": "r", "status": "failed", "output": [],
        "error": {"code": "server_error", "message": "The model crashed"}}}])  # fmt: skip
    (error,) = [e for e in events if isinstance(e, UpstreamError)]
    assert done and error.message == "The model crashed" and error.code == "server_error"
    events, done = feed([{"type": "error", "code": "rate_limit_exceeded",
                          "message": "Slow down", "param": None}])  # fmt: skip
    assert done and events[0].message == "Slow down" and events[0].code == "rate_limit_exceeded"


def test_garbage_ends_the_stream_with_a_clear_error():
    reader = ResponsesEvents()
    events, done = reader.chunk("{not json", "")
    assert done and "Malformed event" in events[0].message
    events, done = reader.chunk("[1, 2]", "")
    assert done and "expected a JSON object" in events[0].message


def test_the_event_line_names_a_payload_without_type():
    reader = ResponsesEvents()
    events, _ = reader.chunk(
        json.dumps({"item_id": "m", "delta": "Hi"}), "response.output_text.delta"
    )
    assert text(events) == "Hi"


def test_a_whole_response_object():
    reasoning_item = {"id": "rs", "type": "reasoning", "summary": [
        {"type": "summary_text", "text": "Because."}], "encrypted_content": "gAAA"}  # fmt: skip
    events = whole_response_events(
        {"id": "resp_w", "status": "completed", "output": [reasoning_item, MESSAGE],
         "usage": USAGE}
    )  # fmt: skip
    assert reasoning(events) == "Because." and text(events) == "Hello world"
    end = events[-1]
    assert isinstance(end, ResponseDone) and end.output == [reasoning_item, MESSAGE]
    assert whole_response_events({"choices": []}) is None


def test_logprobs_are_read_as_chats_are_finite_numbers_and_never_a_crash():
    lp = [{"token": "Hi", "logprob": "nan?", "top_logprobs": [{"token": "Yo", "logprob": "x"}]},
          {"token": "!", "logprob": float("-inf"), "top_logprobs": "junk"}]  # fmt: skip
    events, _ = feed([{"type": "response.output_text.delta", "delta": "Hi!", "logprobs": lp}])
    (logprobs,) = [e for e in events if isinstance(e, Logprobs)]
    assert [t["logprob"] for t in logprobs.tokens] == [0.0, -9999.0]
    assert logprobs.tokens[0]["top"] == [{"token": "Yo", "logprob": 0.0}]


def test_text_streamed_without_ids_or_indexes_is_not_given_again_at_the_end():
    events, done = feed([
        {"type": "response.output_text.delta", "delta": "Hel"},
        {"type": "response.output_text.delta", "delta": "lo"},
        {"type": "response.completed", "response": {"status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "Hello"}]}]}},
    ])  # fmt: skip
    assert done and text(events) == "Hello"


def test_a_summarys_parts_are_paragraphs():
    events, _ = feed([
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs", "summary_index": 0,
         "delta": "First."},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs", "summary_index": 1,
         "delta": "Second."},
    ])  # fmt: skip
    assert reasoning(events) == "First.\n\nSecond."
