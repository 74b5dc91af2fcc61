"""Verdicts that must not be false positives (issue 12, defect 4), each against a small
scripted server (httpx MockTransport) that does what a real one was seen to do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from chat.compat import DIFFERENT, INCONCLUSIVE, PROBES, SUPPORTED, UNSUPPORTED, run_check
from chat.upstream import Endpoint, aclose_client, set_transport

Handler = Callable[[dict[str, Any]], httpx.Response]


@pytest.fixture(autouse=True)
async def _clean_transport() -> AsyncIterator[None]:
    yield
    await aclose_client()
    set_transport(None)


def reply(text: str | None, *, finish: str = "stop", calls: list | None = None) -> httpx.Response:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls is not None:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "finish_reason": finish}
    usage = {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25}
    return httpx.Response(200, json={"object": "chat.completion", "choices": [choice],
                                     "usage": usage})  # fmt: skip


def call(arguments: str, name: str = "get_weather", index: int = 0) -> dict[str, Any]:
    return {"index": index, "id": f"call_{index}", "type": "function",
            "function": {"name": name, "arguments": arguments}}  # fmt: skip


async def check(handler: Handler, *keys: str) -> tuple[dict[str, dict[str, Any]], list[dict]]:
    """Run only the probes ``keys`` against ``handler``; the rows and the bodies sent."""
    sent: list[dict[str, Any]] = []

    def transport(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return handler(body)

    set_transport(httpx.MockTransport(transport))
    probes = [p for p in PROBES if p.key in keys]
    report = await run_check(Endpoint("http://peer.test/v1"), "m", probes=probes)
    return {r["key"]: r for r in report["results"]}, sent


# --------------------------------------------------------------------------- stop


async def test_stop_is_not_supported_just_because_the_answer_had_no_comma():
    # The server ignores stop, and this answer happens to have no comma anyway.
    rows, sent = await check(lambda body: reply("six seven eight nine ten"), "stop")
    assert rows["stop"]["status"] == INCONCLUSIVE
    assert "none without stop either" in rows["stop"]["summary"]
    assert [("stop" in b) for b in sent] == [True, False]  # the same prompt, without stop


async def test_stop_is_supported_when_the_answer_without_stop_has_the_sequence():
    def honours(body: dict[str, Any]) -> httpx.Response:
        free = "6, 7, 8, 9, 10"
        return reply(free.split(",")[0] if body.get("stop") == [","] else free)

    rows, _ = await check(honours, "stop")
    assert rows["stop"]["status"] == SUPPORTED
    assert "without stop: 6, 7, 8" in rows["stop"]["snippet"]


async def test_stop_ignored_with_a_comma_in_the_answer_is_different_in_one_request():
    rows, sent = await check(lambda body: reply("6, 7, 8"), "stop")
    assert rows["stop"]["status"] == DIFFERENT and len(sent) == 1


# --------------------------------------------------------------------------- seed


async def test_the_same_text_for_every_seed_is_could_not_tell():
    rows, sent = await check(lambda body: reply("The sea is calm."), "seed")
    assert rows["seed"]["status"] == INCONCLUSIVE
    assert "Every seed gave the same answer" in rows["seed"]["summary"]
    assert [b["seed"] for b in sent] == [4242, 4242, 4243, 4244]


async def test_the_same_text_for_one_seed_and_another_for_another_is_supported():
    rows, _ = await check(lambda body: reply(f"The sea, seed {body['seed']}."), "seed")
    assert rows["seed"]["status"] == SUPPORTED


async def test_the_same_seed_that_differs_only_when_sent_at_once_is_different():
    # llama-server with --parallel: one request at a time, a seed gives one text; two at
    # once are batched together and the numbers (so the text) change.
    in_flight = 0

    async def batching(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        try:
            # Some turns of the event loop, not a time: two requests sent together are
            # both in flight by then, however slow the machine; one sent alone is alone.
            for _ in range(50):
                await asyncio.sleep(0)
            seed = json.loads(request.content)["seed"]
            together = " (batched)" if in_flight > 1 else ""
            return reply(f"The sea, seed {seed}{together}.")
        finally:
            in_flight -= 1

    set_transport(httpx.MockTransport(batching))
    probes = [p for p in PROBES if p.key in ("seed", "chat", "stream", "logprobs", "n")]
    report = await run_check(Endpoint("http://peer.test/v1"), "m", probes=probes)
    rows = {r["key"]: r for r in report["results"]}
    assert rows["seed"]["status"] == DIFFERENT
    assert "two were sent at once" in rows["seed"]["summary"]
    # Run alone, after the other probes: their requests did not batch its first ones.
    assert rows["seed"]["snippet"] == "The sea, seed 4242. | at once: The sea, seed 4242 (batched)."


# --------------------------------------------------------------------------- tools


async def test_whole_calls_then_one_cut_by_the_limit_is_supported():
    # llama-server keeps writing calls until the limit: the first ones are whole.
    def calls_on(body: dict[str, Any]) -> httpx.Response:
        whole = [call('{"city": "Paris"}', index=0), call('{"city": "Tokyo"}', "get_time", 1)]
        return reply(None, finish="length", calls=[*whole, call('{"city": "', index=2)])

    rows, _ = await check(calls_on, *TOOL_KEYS)
    assert {rows[k]["status"] for k in TOOL_KEYS} == {SUPPORTED}
    assert "further call was cut" in rows["tools_required"]["summary"]


TOOL_KEYS = ("tools_auto", "tools_required", "tools_parallel")


async def test_a_tool_call_cut_by_the_token_limit_is_could_not_tell_like_json():
    def cut(body: dict[str, Any]) -> httpx.Response:
        if "tools" in body:
            return reply(None, finish="length", calls=[call('{"city": "Pa')])
        return reply('{"answer": "hel', finish="length")  # json_object, cut the same way

    rows, _ = await check(cut, *TOOL_KEYS, "json_object")
    assert rows["json_object"]["status"] == INCONCLUSIVE
    for key in TOOL_KEYS:
        assert rows[key]["status"] == INCONCLUSIVE, key
        assert "cut by the token limit" in rows[key]["summary"]


async def test_text_cut_by_the_token_limit_instead_of_a_call_is_could_not_tell():
    rows, _ = await check(lambda body: reply("Let me think about", finish="length"), *TOOL_KEYS)
    assert {rows[k]["status"] for k in TOOL_KEYS} == {INCONCLUSIVE}


async def test_the_same_tool_answers_not_cut_still_behave_differently():
    def broken(body: dict[str, Any]) -> httpx.Response:
        return reply(None, finish="tool_calls", calls=[call('{"city": "Pa')])

    rows, _ = await check(broken, *TOOL_KEYS)
    assert {rows[k]["status"] for k in TOOL_KEYS} == {DIFFERENT}


async def test_text_under_tool_choice_auto_is_could_not_tell_but_not_under_required():
    # A small model may well answer in text when it is free to (llama.cpp's Gemma 270M
    # does); only "required" makes a text answer a fault of the server.
    rows, _ = await check(lambda body: reply("No tools today."), *TOOL_KEYS, "tool_stream")
    assert rows["tools_required"]["status"] == DIFFERENT
    for key in ("tools_auto", "tools_parallel", "tool_stream"):
        assert rows[key]["status"] == INCONCLUSIVE, key
        assert "tool_choice auto allows" in rows[key]["summary"]


def sse(*chunks: dict[str, Any]) -> httpx.Response:
    data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          content=data + b"data: [DONE]\n\n")  # fmt: skip


def delta(finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": finish}]}


@pytest.mark.parametrize(("finish", "status"), [("length", INCONCLUSIVE), ("stop", DIFFERENT)])
async def test_a_streamed_tool_call_cut_by_the_limit_is_could_not_tell(finish, status):
    def streamed(body: dict[str, Any]) -> httpx.Response:
        return sse(
            delta(role="assistant", content=None),
            delta(tool_calls=[call('{"city": ')]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": '"Par'}}]),
            delta(finish),
        )

    rows, _ = await check(streamed, "tool_stream")
    assert rows["tool_stream"]["status"] == status


# --------------------------------------------------------------------------- images


def error(status: int, message: str) -> Handler:
    def handler(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": status, "message": message,
                                                      "type": "server_error"}})  # fmt: skip

    return handler


async def test_a_500_that_says_images_are_not_supported_is_not_supported():
    # llama.cpp's llama-server without a vision projector, word for word.
    message = (
        "image input is not supported - hint: if this is unexpected, you may need to provide "
        "the mmproj"
    )
    rows, _ = await check(error(500, message), "image")
    assert rows["image"]["status"] == UNSUPPORTED
    assert rows["image"]["http_status"] == 500
    assert "image input is not supported" in rows["image"]["summary"]
    assert rows["image"]["error"]["message"] == message


@pytest.mark.parametrize(
    "message", ["This model does not support image inputs.", "Vision is not enabled here"]
)
async def test_other_wordings_of_no_images_are_not_supported_too(message):
    rows, _ = await check(error(500, message), "image")
    assert rows["image"]["status"] == UNSUPPORTED


async def test_a_500_about_something_else_is_still_could_not_tell():
    rows, _ = await check(error(500, "CUDA out of memory"), "image")
    assert rows["image"]["status"] == INCONCLUSIVE


async def test_one_call_where_two_were_asked_under_auto_is_could_not_tell():
    one = [call('{"city": "Paris"}')]
    rows, _ = await check(
        lambda body: reply(None, finish="tool_calls", calls=one), "tools_parallel"
    )
    assert rows["tools_parallel"]["status"] == INCONCLUSIVE
    assert "1 tool call where 2" in rows["tools_parallel"]["summary"]


# --------------------------------------------------------------------------- named, parallel false

NAMED = ("tool_choice_named",)
WEATHER_CALL = call('{"city": "Paris"}')
CLOCK_CALL = call('{"city": "Tokyo"}', "get_time", 1)


def calls_reply(*calls: dict[str, Any], finish: str = "tool_calls") -> Handler:
    return lambda body: reply(None, finish=finish, calls=list(calls))


def honours_the_naming(body: dict[str, Any]) -> httpx.Response:
    """The named function when named; what the prompt asks for (the weather) else."""
    named = isinstance(body["tool_choice"], dict)
    return reply(None, finish="tool_calls", calls=[CLOCK_CALL if named else WEATHER_CALL])


async def test_a_call_to_the_named_function_is_supported_and_the_naming_is_sent():
    rows, sent = await check(honours_the_naming, *NAMED)
    assert rows["tool_choice_named"]["status"] == SUPPORTED, rows["tool_choice_named"]
    assert sent[0]["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["get_weather", "get_time"]
    assert "weather" in sent[0]["messages"][0]["content"]  # the prompt asks for the other
    # Asked three times, then with tool_choice required, which calls the weather.
    assert [b["tool_choice"] for b in sent][1:] == [sent[0]["tool_choice"]] * 2 + ["required"]


async def test_the_named_function_called_either_way_is_could_not_tell():
    rows, _ = await check(calls_reply(CLOCK_CALL), *NAMED)
    assert rows["tool_choice_named"]["status"] == INCONCLUSIVE
    assert "calls get_time too: can't tell" in rows["tool_choice_named"]["summary"]


async def test_the_named_function_once_then_another_is_different():
    """What llama.cpp did: it ignores the naming, and once called the named function
    anyway (the report said supported while the server let other calls through)."""
    answers = iter([CLOCK_CALL, WEATHER_CALL, CLOCK_CALL, WEATHER_CALL])
    rows, sent = await check(
        lambda body: reply(None, finish="tool_calls", calls=[next(answers)]), *NAMED
    )
    assert rows["tool_choice_named"]["status"] == DIFFERENT
    assert (
        "not get_time that tool_choice names (asked again)"
        in (rows["tool_choice_named"]["summary"])
    )
    assert len(sent) == 2


@pytest.mark.parametrize("finish", ["tool_calls", "length"])
async def test_a_call_to_another_function_than_the_named_one_is_different(finish):
    # llama.cpp ignores a named tool_choice and calls what the prompt asks for.
    rows, _ = await check(calls_reply(WEATHER_CALL, finish=finish), *NAMED)
    assert rows["tool_choice_named"]["status"] == DIFFERENT
    assert "Called get_weather, not get_time" in rows["tool_choice_named"]["summary"]


async def test_text_under_a_named_tool_choice_is_different_unless_cut():
    rows, _ = await check(lambda body: reply("It is sunny."), *NAMED)
    assert rows["tool_choice_named"]["status"] == DIFFERENT
    rows, _ = await check(lambda body: reply("Let me", finish="length"), *NAMED)
    assert rows["tool_choice_named"]["status"] == INCONCLUSIVE


async def test_a_named_call_cut_by_the_limit_is_could_not_tell():
    rows, _ = await check(calls_reply(call('{"city": "To', "get_time"), finish="length"), *NAMED)
    assert rows["tool_choice_named"]["status"] == INCONCLUSIVE
    assert "cut by the token limit" in rows["tool_choice_named"]["summary"]


def honours_parallel_false(body: dict[str, Any]) -> httpx.Response:
    calls = [WEATHER_CALL] if body["parallel_tool_calls"] is False else [WEATHER_CALL, CLOCK_CALL]
    return reply(None, finish="tool_calls", calls=calls)


async def test_one_call_under_parallel_false_and_two_under_true_is_supported():
    rows, sent = await check(honours_parallel_false, "parallel_false")
    assert rows["parallel_false"]["status"] == SUPPORTED
    assert (
        "with parallel_tool_calls true the same request gets 2 calls"
        in (rows["parallel_false"]["summary"])
    )
    # Asked three times with false (one call each), then once with true.
    assert [b["parallel_tool_calls"] for b in sent] == [False, False, False, True]
    assert sent[0]["tool_choice"] == "required"
    assert {k: v for k, v in sent[0].items() if k != "parallel_tool_calls"} == {
        k: v for k, v in sent[-1].items() if k != "parallel_tool_calls"
    }


async def test_one_call_either_way_is_could_not_tell():
    # A small model may make one call whatever the flag says: nothing shows it at work.
    rows, sent = await check(calls_reply(WEATHER_CALL), "parallel_false")
    assert rows["parallel_false"]["status"] == INCONCLUSIVE
    assert "gets 1 call too" in rows["parallel_false"]["summary"]
    assert len(sent) == 4


async def test_one_call_under_false_then_more_when_asked_again_is_different():
    """What llama.cpp did under load: the model made one call under false, two under
    true, and the report said supported; the server lets any number through (the oracle
    got four). Asked again, a second answer with more calls shows it."""
    answers = iter([[WEATHER_CALL], [WEATHER_CALL, CLOCK_CALL], [WEATHER_CALL]])
    rows, sent = await check(
        lambda body: reply(None, finish="tool_calls", calls=next(answers)), "parallel_false"
    )
    assert rows["parallel_false"]["status"] == DIFFERENT
    assert (
        "2 calls (get_weather, get_time) with parallel_tool_calls false (asked again)"
        in rows["parallel_false"]["summary"]
    )
    assert [b["parallel_tool_calls"] for b in sent] == [False, False]


@pytest.mark.parametrize("finish", ["tool_calls", "length"])
async def test_two_calls_under_parallel_false_are_different(finish):
    rows, _ = await check(calls_reply(WEATHER_CALL, CLOCK_CALL, finish=finish), "parallel_false")
    assert rows["parallel_false"]["status"] == DIFFERENT
    assert "2 tool calls (get_weather, get_time)" in rows["parallel_false"]["summary"]


@pytest.mark.parametrize("finish", ["stop", "length"])
async def test_no_call_under_parallel_false_is_could_not_tell(finish):
    rows, _ = await check(lambda body: reply("Sunny, 9 pm.", finish=finish), "parallel_false")
    assert rows["parallel_false"]["status"] == INCONCLUSIVE


async def test_one_call_cut_under_parallel_false_is_could_not_tell():
    rows, _ = await check(calls_reply(call('{"ci'), finish="length"), "parallel_false")
    assert rows["parallel_false"]["status"] == INCONCLUSIVE


async def test_a_refusal_of_either_is_not_supported():
    unknown = error(400, "Unrecognized request argument supplied: parallel_tool_calls")
    rows, _ = await check(unknown, "parallel_false", *NAMED)
    assert {rows[k]["status"] for k in ("parallel_false", *NAMED)} == {UNSUPPORTED}
    assert "parallel_tool_calls" in rows["parallel_false"]["summary"]


# --------------------------------------------------------------------------- a second try


async def test_a_probe_cut_by_its_own_limit_is_asked_again_with_a_larger_budget():
    """A call cut at the probe's token limit (a small model writes slowly around it) is
    asked again with four times the tokens: a whole call then is supported, and the row
    says it was asked again and what the first answer was."""

    def cut_then_whole(body: dict[str, Any]) -> httpx.Response:
        if body["max_tokens"] <= 64:
            return reply(None, finish="length", calls=[call('{"city": "Pa')])
        return reply(None, finish="tool_calls", calls=[call('{"city": "Paris"}')])

    rows, sent = await check(cut_then_whole, "tools_required")
    row = rows["tools_required"]
    assert row["status"] == SUPPORTED
    assert "asked again with 4× the tokens" in row["summary"]
    assert "cut by the token limit" in row["summary"]  # the first time, as it was
    assert row["facts"]["retried"] == "with 4× the tokens"
    assert [b["max_tokens"] for b in sent] == [64, 256]


async def test_a_probe_still_cut_the_second_time_could_not_tell_after_one_retry():
    rows, sent = await check(
        lambda body: reply(None, finish="length", calls=[call('{"city": "Pa')]), "tools_required"
    )
    assert rows["tools_required"]["status"] == INCONCLUSIVE
    assert len(sent) == 2  # once more, not again and again


async def test_a_verdict_that_is_not_about_the_budget_is_not_asked_again():
    rows, sent = await check(lambda body: reply("Hello!"), "tools_required")
    assert rows["tools_required"]["status"] == DIFFERENT and len(sent) == 1
