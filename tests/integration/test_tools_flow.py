"""Tools end to end: the fake endpoint streams each known deviation, the run assembles
the calls, the user answers them, and the model continues."""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async

from chat import conversations
from chat.models import Conversation, EndpointProfile
from chat.tools import TEMPLATES
from chat.upstream import fake_app
from tests.integration.test_consumer import connect, messages_of, until_done

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = TEMPLATES["weather"]
CALC = TEMPLATES["calculator"]
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
    {"name": "calculate", "arguments": {"expression": "2 * (3 + 4)"}},
]


@database_sync_to_async
def conversation_with_tools(user) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo-fast")
    conversation.tools = [
        {"tool": WEATHER, "enabled": True, "mock": '{"temp": 18}'},
        {"tool": CALC, "enabled": True, "mock": "14"},
    ]
    conversation.save()
    return conversation


async def send(owner, conversation, frame):
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps(frame))
    frames = await until_done(comm)
    if frame["action"] == "tool_results":
        # The first final-looking frame is the answered message re-rendered without its
        # results form; then comes the model's next answer.
        frames += await until_done(comm)
    await comm.disconnect()
    return frames


@pytest.mark.parametrize("style", ["standard", "no_index", "reuse_index", "one_chunk", "no_type"])
async def test_each_streaming_deviation_assembles_the_same_calls(owner, style):
    conversation = await conversation_with_tools(owner)
    script = json.dumps({"tool_calls": CALLS, "tool_style": style})
    frames = await send(owner, conversation, {"action": "send", "content": f"Go\n@fake {script}"})
    _, answer = await messages_of(conversation)
    assert answer.finish_reason == "tool_calls" and answer.status == "complete"
    assert [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in answer.tool_calls
    ] == [(c["name"], c["arguments"]) for c in CALLS]
    assert all(c["type"] == "function" and c["id"] for c in answer.tool_calls)
    assert len({c["id"] for c in answer.tool_calls}) == 2
    # shown live while streaming: each call's element, then its arguments
    assert any('id="call-' in f for f in frames)
    assert 'name="result:' in frames[-1]  # the results form comes with the final render
    body = answer.request_body
    assert body["stream"] is True and [t["function"]["name"] for t in body["tools"]] == [
        "get_weather",
        "calculate",
    ]


async def test_legacy_function_call_is_assembled_and_answered_the_legacy_way(owner):
    conversation = await conversation_with_tools(owner)
    script = json.dumps({"tool_calls": CALLS[:1], "tool_style": "legacy"})
    await send(owner, conversation, {"action": "send", "content": f"Go\n@fake {script}"})
    _, answer = await messages_of(conversation)
    assert answer.finish_reason == "function_call"
    (call,) = answer.tool_calls
    assert call["function"]["name"] == "get_weather"
    await send(
        owner,
        conversation,
        {"action": "tool_results", "message": answer.pk, f"result:{call['id']}": "sunny"},
    )
    sent = fake_app().requests[-1]["json"]["messages"]
    assert sent[-2] == {"role": "assistant", "content": None, "function_call": call["function"]}
    assert sent[-1] == {"role": "function", "name": "get_weather", "content": "sunny"}


async def test_results_go_back_as_tool_messages_and_the_model_answers(owner):
    conversation = await conversation_with_tools(owner)
    script = json.dumps({"tool_calls": CALLS})
    await send(owner, conversation, {"action": "send", "content": f"Weather?\n@fake {script}"})
    _, answer = await messages_of(conversation)
    ids = [c["id"] for c in answer.tool_calls]
    frames = await send(
        owner,
        conversation,
        {
            "action": "tool_results",
            "message": answer.pk,
            f"result:{ids[0]}": '{"temp": 18}',
            f"result:{ids[1]}": "14",
        },
    )
    messages = await messages_of(conversation)
    roles = [(m.role, m.tool_call_id) for m in messages]
    assert roles == [
        ("user", ""),
        ("assistant", ""),
        ("tool", ids[0]),
        ("tool", ids[1]),
        ("assistant", ""),
    ]
    final = messages[-1]
    assert final.status == "complete" and '{"temp": 18}' in final.content and "14" in final.content
    sent = fake_app().requests[-1]["json"]["messages"]
    assert sent[-3]["tool_calls"] == answer.tool_calls
    assert sent[-2:] == [
        {"role": "tool", "tool_call_id": ids[0], "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": ids[1], "content": "14"},
    ]
    assert any('data-role="tool"' in f for f in frames)
    # the answered calls cannot be answered twice
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps(
            {
                "action": "tool_results",
                "message": answer.pk,
                f"result:{ids[0]}": "x",
                f"result:{ids[1]}": "y",
            }
        )
    )
    assert "already answered" in await comm.receive_from(timeout=60)
    await comm.disconnect()


async def test_multi_step_loops_work(owner):
    conversation = await conversation_with_tools(owner)
    script = json.dumps({"tool_calls": CALLS[1:], "tool_rounds": 2})
    await send(owner, conversation, {"action": "send", "content": f"Twice\n@fake {script}"})
    for expected_more in (True, False):
        answer = (await messages_of(conversation))[-1]
        assert answer.tool_calls
        await send(
            owner,
            conversation,
            {
                "action": "tool_results",
                "message": answer.pk,
                f"result:{answer.tool_calls[0]['id']}": "14",
            },
        )
        last = (await messages_of(conversation))[-1]
        assert bool(last.tool_calls) is expected_more
    assert "From the tool result" in last.content


async def test_a_missing_result_is_refused_and_nothing_is_sent(owner):
    conversation = await conversation_with_tools(owner)
    await send(
        owner,
        conversation,
        {"action": "send", "content": f"Go\n@fake {json.dumps({'tool_calls': CALLS})}"},
    )
    _, answer = await messages_of(conversation)
    before = fake_app().requests.total
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps(
            {
                "action": "tool_results",
                "message": answer.pk,
                f"result:{answer.tool_calls[0]['id']}": "ok",
            }
        )
    )
    frame = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert "Give a result for every call" in frame and "calculate" in frame
    assert fake_app().requests.total == before


async def test_the_demo_model_calls_a_tool_the_prompt_names(owner):
    conversation = await conversation_with_tools(owner)
    await send(owner, conversation, {"action": "send", "content": "What's the weather in Paris?"})
    _, answer = await messages_of(conversation)
    (call,) = answer.tool_calls
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"] == "Paris"


async def test_invalid_tool_json_is_refused_inline_and_nothing_is_sent(owner):
    conversation = await conversation_with_tools(owner)
    before = fake_app().requests.total
    comm = await connect(owner, conversation)
    frame = {
        "action": "send",
        "content": "Use my tool",
        "tool_json": ['{"name": "ok_tool"}', '{"name": "broken", "parameters": {"type": 7}}'],
        "tool_mock": ["", ""],
        "tool_enabled": ["0", "1"],
        "tool_choice": "",
    }
    await comm.send_to(text_data=json.dumps(frame))
    reply = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert "Fix the tools first" in reply and "Tool 2" in reply and "Use my tool" in reply
    assert fake_app().requests.total == before
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_tools_from_the_editor_are_saved_and_sent_with_tool_choice(owner):
    conversation = await conversation_with_tools(owner)
    frame = {
        "action": "send",
        "content": "Hi",
        "tool_json": json.dumps(CALC),
        "tool_mock": "",
        "tool_enabled": "0",
        "tool_choice": "required",
        "param:parallel_tool_calls": "false",
    }
    await send(owner, conversation, frame)
    body = fake_app().requests[-1]["json"]
    assert body["tools"] == [CALC] and body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    _, answer = await messages_of(conversation)
    assert answer.tool_calls[0]["function"]["name"] == "calculate"  # required: it had to call


async def test_a_disabled_tool_is_kept_but_not_sent_and_a_named_choice_is(owner, client):
    conversation = await conversation_with_tools(owner)
    named = {"type": "function", "function": {"name": "get_weather"}}
    frame = {
        "action": "send",
        "content": "Work out 2 * (3 + 4) for me",
        "tool_json": [json.dumps(WEATHER), json.dumps(CALC)],
        "tool_mock": ['{"temp": 18}', "14"],
        "tool_enabled": ["0"],  # the calculator is switched off
        "tool_choice": "function:get_weather",
    }
    await send(owner, conversation, frame)
    body = fake_app().requests[-1]["json"]
    assert body["tools"] == [WEATHER] and body["tool_choice"] == named
    _, answer = await messages_of(conversation)
    assert answer.request_body["tools"] == [WEATHER]
    # The endpoint was made to call it, although the prompt is about arithmetic.
    assert [c["function"]["name"] for c in answer.tool_calls] == ["get_weather"]

    # Kept: stored with the conversation, shown unticked in the editor after a reload.
    await database_sync_to_async(conversation.refresh_from_db)()
    assert [(t["tool"], t["enabled"], t["mock"]) for t in conversation.tools] == [
        (WEATHER, True, '{"temp": 18}'),
        (CALC, False, "14"),
    ]
    assert conversation.tool_choice == named
    await database_sync_to_async(client.force_login)(owner)
    page = (await database_sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="tool_enabled" value="(\d)"( checked)?>', page)
    assert boxes == [("0", " checked"), ("1", "")]
    assert "&quot;name&quot;: &quot;calculate&quot;" in page
    assert 'value="function:get_weather" selected' in page

    # A named choice must be an enabled tool: refused inline, nothing sent.
    before = fake_app().requests.total
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps({**frame, "tool_choice": "function:calculate"}))
    reply = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert "tool_choice names calculate, which is not an enabled tool" in reply
    assert fake_app().requests.total == before
