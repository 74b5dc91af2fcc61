"""The two pure parts of streaming an answer, without an event loop or a socket: what a
run's upstream events add up to (chat.runs.answer.Answer), and which frames one page
needs to show a run exactly once (chat.sockets.shown.Shown)."""

from __future__ import annotations

from chat import frames, upstream
from chat.runs.answer import CONTENT, REASONING, Answer
from chat.sockets.shown import GAP, Shown
from chat.upstream.secrets import Secrets

KEY = "sk-test-0123456789abcdef"


def test_an_answer_adds_text_reasoning_calls_choices_usage_and_finish_reasons():
    answer = Answer()
    answer.raw.append("line 0")
    assert answer.add(upstream.ReasoningDelta(text="Think."), at=5.0)
    assert answer.add(upstream.TextDelta(text="Hel"), at=6.0)
    assert answer.add(upstream.TextDelta(text="lo"), at=7.0)
    assert answer.add(upstream.TextDelta(text="Other", choice=1), at=7.0)
    assert not answer.add(upstream.ReasoningDelta(text="x", choice=1), at=7.0)  # not kept
    assert answer.add(upstream.ToolCallDelta(index=0, id="c1", name="f", arguments='{"a"'), 8.0)
    assert answer.add(upstream.ToolCallDelta(index=0, arguments=": 1}"), at=8.5)
    assert not answer.add(upstream.Usage(prompt_tokens=3, completion_tokens=4), at=9.0)
    assert not answer.add(upstream.Finish(reason="tool_calls"), at=9.0)
    assert not answer.add(upstream.Finish(reason="stop", choice=1), at=9.0)

    assert answer.first_token_at == 5.0
    assert answer.text(CONTENT) == "Hello" and answer.text(REASONING) == "Think."
    assert answer.new_calls == [0] and answer.call_info(0) == {"slot": 0, "name": "f", "id": "c1"}
    assert answer.calls()[0]["function"]["arguments"] == '{"a": 1}'
    assert answer.usage == {"prompt_tokens": 3, "completion_tokens": 4}
    assert answer.finish_reason == "tool_calls"
    assert [(c["index"], c["content"], c["finish_reason"]) for c in answer.choices()] == [
        (0, "Hello", "tool_calls"),
        (1, "Other", "stop"),
    ]
    assert answer.size == len("Think.Hello" + "Other" + '{"a": 1}')


def test_one_choice_has_no_choices_list():
    answer = Answer()
    answer.add(upstream.TextDelta(text="Hi"), at=1.0)
    answer.add(upstream.Finish(reason="stop"), at=1.0)
    assert answer.choices() is None


def test_an_echoed_secret_split_across_deltas_and_tokens_is_out_of_everything_kept():
    answer = Answer(Secrets([KEY]))
    for n, piece in enumerate(["Your key is sk-test-0123", "456789abcdef, right?"]):
        answer.raw.append(f'{{"n": {n}, "content": "{piece}"}}')
        answer.add(upstream.TextDelta(text=piece), at=1.0)
        tokens = [{"token": piece, "logprob": -0.1, "top": []}]
        answer.add(upstream.Logprobs(choice=0, tokens=tokens), at=1.0)
    answer.finish()
    assert answer.text() == "Your key is [redacted], right?"
    assert KEY not in "".join(t["token"] for t in answer.logprobs[0])
    raw = "\n".join(answer.raw_redacted())
    assert "0123" not in raw and "456789abcdef" not in raw
    answer.finish()  # idempotent
    assert answer.text() == "Your key is [redacted], right?"


def test_a_page_gets_each_character_once_and_asks_for_a_snapshot_after_a_gap():
    shown = Shown()
    first = {"message_id": 7, "field": "t", "offset": 0, "text": "Hello"}
    assert shown.delta(first) == frames.delta(7, "t", "Hello")
    assert shown.delta(first) is None  # a duplicate: nothing new
    overlap = {"message_id": 7, "field": "t", "offset": 3, "text": "lo, world"}
    assert shown.delta(overlap) == frames.delta(7, "t", ", world")
    assert shown.delta({"message_id": 7, "field": "t", "offset": 40, "text": "x"}) is GAP


def test_markdown_blocks_are_committed_in_order_and_a_missed_block_is_a_gap():
    shown = Shown()
    block = {"start": 0, "end": 6, "keep": 0, "html": "<p>One</p>"}
    event = {"message_id": 1, "field": "t", "offset": 0, "text": "One\n\n", "block": block}
    assert shown.delta(event) == frames.block(1, "t", "One\n\n", block)
    later = {"start": 9, "end": 12, "keep": 0, "html": "<p>x</p>"}
    skipped = {"message_id": 1, "field": "t", "offset": 5, "text": "x", "block": later}
    assert shown.delta(skipped) is GAP


def test_frames_held_while_waiting_for_a_snapshot_are_released_once():
    shown = Shown()
    assert shown.wait(3) and not shown.wait(3)
    event = {"message_id": 3, "field": "t", "offset": 0, "text": "a"}
    assert shown.hold(event) and not shown.hold({**event, "message_id": 4})
    snapshot = {"fields": {"t": "abc", "r": ""}, "calls": [], "blocks": {}}
    out = shown.snapshot(3, snapshot)
    assert out == [
        frames.delta(3, "t", "abc", replace=True) + frames.delta(3, "r", "", replace=True)
    ]
    assert shown.release(3) == [event] and shown.release(3) is None
    assert shown.delta(event) is None  # the snapshot already showed it
    shown.done(3)
    assert shown.delta(event) == frames.delta(3, "t", "a")  # a new stream starts from 0


def test_a_tool_call_element_is_sent_once():
    shown = Shown()
    call = {"message_id": 2, "slot": 0, "name": "f", "id": "c"}
    assert shown.toolcall(call) == frames.tool_calls(2, [call])
    assert shown.toolcall(call) is None


def test_any_choices_first_text_or_reasoning_is_the_first_token():
    answer = Answer()
    assert not answer.add(upstream.ReasoningDelta(text="x", choice=1), at=2.0)  # not kept
    answer.add(upstream.TextDelta(text="y"), at=3.0)
    assert answer.first_token_at == 2.0 and answer.text(REASONING) == ""
