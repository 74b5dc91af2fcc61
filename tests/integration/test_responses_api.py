"""A lane on the Responses API, end to end against the fake endpoint: the same socket,
run, relay and store as chat; the request in the Responses shape; its typed events
streamed into the same answer; the next turn sends the history as input items."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from chat import conversations
from chat.models import Conversation, EndpointProfile, Lane
from chat.tools import TEMPLATES
from chat.upstream import fake_app
from tests.integration.test_consumer import messages_of
from tests.integration.test_tools_flow import send

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def responses_conversation(user, *, model="demo-fast", params=None, tools=None) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model=model)
    lane = conversation.lanes.get()
    lane.api = "responses"
    lane.params = params or {}
    lane.save()
    if tools:
        conversation.tools = tools
        conversation.save()
    return conversation


WEATHER_ENTRY = {"tool": TEMPLATES["weather"], "enabled": True, "mock": '{"temp": 18}'}


async def oslo_weather_call(owner, conversation):
    """Send a question the fake answers with one get_weather call; the answer, the call."""
    calls = [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}]
    script = json.dumps({"tool_calls": calls})
    await send(owner, conversation, {"action": "send", "content": f"Weather?\n@fake {script}"})
    _, answer = await messages_of(conversation)
    (call,) = answer.tool_calls
    return answer, call


async def send_result(owner, conversation, answer, call, result: str = "snow"):
    frame = {"action": "tool_results", "message": answer.pk, f"result:{call['id']}": result}
    await send(owner, conversation, frame)


async def settled(conversation, within: float = 60.0) -> None:
    """Wait until no answer of the conversation is streaming (a database state)."""
    streaming = database_sync_to_async(
        lambda: conversation.messages.filter(status="streaming").exists()
    )
    async with asyncio.timeout(within):
        while await streaming():
            await asyncio.sleep(0.02)


def last_request():
    return fake_app().requests[-1]


async def test_a_responses_lane_streams_an_answer_with_usage_and_keeps_its_items(owner):
    conversation = await responses_conversation(
        owner, params={"temperature": 0.3, "max_tokens": 200, "seed": 7, "n": 2}
    )
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(
        system_prompt="Be brief."
    )
    frames = await send(owner, conversation, {"action": "send", "content": "Hello there"})
    request = last_request()
    assert request["path"] == "/v1/responses"
    body = request["json"]
    assert body["instructions"] == "Be brief."
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hello there"}],
        }
    ]
    assert body["temperature"] == 0.3 and body["max_output_tokens"] == 200
    # Chat-only parameters are not sent on this API (they stay on the lane).
    assert "seed" not in body and "n" not in body and "messages" not in body
    assert "stream_options" not in body and body["stream"] is True
    _, answer = await messages_of(conversation)
    assert answer.status == "complete" and answer.finish_reason == "stop"
    assert answer.content and answer.api == "responses"
    assert answer.response_id.startswith("resp_")
    assert [i["type"] for i in answer.output_items] == ["message"]
    assert answer.output_items[0]["content"][0]["text"] == answer.content
    assert answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
    assert answer.request_body == body
    # The text was streamed live, as for chat.
    assert any(answer.content.split()[0] in f for f in frames[:-1])
    # The raw stream (for the inspector) is the typed events, as they came.
    assert json.loads(answer.raw_response[0])["type"] == "response.created"


async def test_the_next_turn_sends_the_history_as_input_items(owner):
    conversation = await responses_conversation(owner)
    await send(owner, conversation, {"action": "send", "content": "First question"})
    await send(owner, conversation, {"action": "send", "content": "Second question"})
    messages = await messages_of(conversation)
    body = last_request()["json"]
    assert [(i["type"], i["role"]) for i in body["input"]] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert body["input"][1]["content"] == [{"type": "output_text", "text": messages[1].content}]
    assert "previous_response_id" not in body


async def test_reasoning_streams_into_the_reasoning_field_and_goes_back_encrypted(owner):
    conversation = await responses_conversation(
        owner, params={"encrypted_reasoning": True, "reasoning_effort": "low"}
    )
    script = json.dumps({"reasoning": "Let me think about it.", "reply": "Forty-two."})
    await send(owner, conversation, {"action": "send", "content": f"Q\n@fake {script}"})
    body = last_request()["json"]
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "low"}
    _, answer = await messages_of(conversation)
    assert answer.reasoning == "Let me think about it." and answer.content == "Forty-two."
    assert answer.usage["reasoning_tokens"] > 0
    reasoning = answer.output_items[0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    await send(owner, conversation, {"action": "send", "content": "And then?"})
    sent = last_request()["json"]["input"]
    assert sent[1]["type"] == "reasoning"
    assert sent[1]["encrypted_content"] == reasoning["encrypted_content"]
    assert sent[2]["role"] == "assistant"


async def test_a_cut_answer_is_incomplete_with_its_reason(owner):
    conversation = await responses_conversation(owner, params={"max_tokens": 3})
    await send(owner, conversation, {"action": "send", "content": "Tell me a long story"})
    _, answer = await messages_of(conversation)
    assert answer.finish_reason == "max_output_tokens"
    assert answer.content and answer.status == "complete"


async def test_a_tool_round_trip_on_the_responses_api(owner):
    weather = TEMPLATES["weather"]
    conversation = await responses_conversation(
        owner, tools=[{"tool": weather, "enabled": True, "mock": '{"temp": 18}'}]
    )
    calls = [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]
    script = json.dumps({"tool_calls": calls})
    await send(owner, conversation, {"action": "send", "content": f"Weather?\n@fake {script}"})
    body = last_request()["json"]
    assert body["tools"][0]["type"] == "function" and body["tools"][0]["name"] == "get_weather"
    assert "function" not in body["tools"][0]
    _, answer = await messages_of(conversation)
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.tool_calls
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == calls[0]["arguments"]
    await send(
        owner,
        conversation,
        {"action": "tool_results", "message": answer.pk, f"result:{call['id']}": "sunny"},
    )
    sent = last_request()["json"]["input"]
    assert sent[-2] == {
        "type": "function_call",
        "call_id": call["id"],
        "name": "get_weather",
        "arguments": call["function"]["arguments"],
    }
    assert sent[-1] == {"type": "function_call_output", "call_id": call["id"], "output": "sunny"}
    final = (await messages_of(conversation))[-1]
    assert final.status == "complete" and "sunny" in final.content


async def test_chat_and_responses_lanes_side_by_side_on_one_model(owner):
    conversation = await responses_conversation(owner)

    @database_sync_to_async
    def add_chat_lane():
        first = conversation.lanes.get()
        Lane.objects.create(
            conversation=conversation, position=1, profile=first.profile, model=first.model,
            api="chat",
        )  # fmt: skip

    await add_chat_lane()
    await send(owner, conversation, {"action": "send", "content": "Same question"})
    paths = sorted(r["path"] for r in fake_app().requests[-2:])
    assert paths == ["/v1/chat/completions", "/v1/responses"]
    messages = await messages_of(conversation)
    answers = [m for m in messages if m.role == "assistant"]
    assert sorted(a.api for a in answers) == ["", "responses"]
    assert all(a.status == "complete" and a.content for a in answers)


@database_sync_to_async
def on_personality(conversation: Conversation, name: str) -> None:
    """The conversation's endpoint becomes one of the fake's imitations."""
    profile = conversation.lanes.get().profile
    profile.base_url = f"http://fake.invalid/{name}/v1"
    profile.save()


async def test_chained_turns_send_only_what_is_new_with_previous_response_id(owner):
    conversation = await responses_conversation(owner, params={"conversation_state": "chained"})
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(
        system_prompt="Be brief."
    )
    await send(owner, conversation, {"action": "send", "content": "My name is Ada"})
    first = last_request()["json"]
    assert "previous_response_id" not in first and first["store"] is True
    _, answer = await messages_of(conversation)
    await send(owner, conversation, {"action": "send", "content": "What is my name?"})
    second = last_request()["json"]
    assert second["previous_response_id"] == answer.response_id
    assert second["input"] == [
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "What is my name?"}]}
    ]  # fmt: skip
    # Instructions are not carried over by the server: sent again each turn.
    assert second["instructions"] == "Be brief." and second["store"] is True
    final = (await messages_of(conversation))[-1]
    assert final.status == "complete" and final.request_body["previous_response_id"]


async def test_a_chained_tool_round_sends_only_the_results(owner):
    conversation = await responses_conversation(
        owner, params={"conversation_state": "chained"}, tools=[WEATHER_ENTRY]
    )
    answer, call = await oslo_weather_call(owner, conversation)
    await send_result(owner, conversation, answer, call)
    body = last_request()["json"]
    assert body["previous_response_id"] == answer.response_id
    assert body["input"] == [
        {"type": "function_call_output", "call_id": call["id"], "output": "snow"}
    ]
    final = (await messages_of(conversation))[-1]
    # The fake answered from the stored call and the result: the chain held.
    assert final.status == "complete" and "snow" in final.content


async def test_a_refused_chain_falls_back_to_the_whole_conversation_when_allowed(owner):
    conversation = await responses_conversation(
        owner, params={"conversation_state": "chained_or_whole"}
    )
    await send(owner, conversation, {"action": "send", "content": "First"})
    await on_personality(conversation, "responses-stateless")
    frames = await send(owner, conversation, {"action": "send", "content": "Second"})
    refused, sent = [r["json"] for r in fake_app().requests[-2:]]
    assert "previous_response_id" in refused and "previous_response_id" not in sent
    assert [i.get("role") for i in sent["input"]] == ["user", "assistant", "user"]
    final = (await messages_of(conversation))[-1]
    assert final.status == "complete" and final.request_body == sent
    (note,) = final.metrics["notes"]
    assert "refused previous_response_id" in note and "whole conversation" in note
    assert "refused previous_response_id" in frames[-1]  # shown with the answer


async def test_a_refused_chain_without_fallback_is_an_error_that_says_what_to_do(owner):
    conversation = await responses_conversation(owner, params={"conversation_state": "chained"})
    await send(owner, conversation, {"action": "send", "content": "First"})
    await on_personality(conversation, "responses-stateless")
    await send(owner, conversation, {"action": "send", "content": "Second"})
    final = (await messages_of(conversation))[-1]
    assert final.status == "error"
    assert "stateless" in final.error["message"] and "chained_or_whole" in final.error["message"]
    assert final.error["status"] == 400


@pytest.mark.django_db
def test_a_lanes_api_survives_clone_setup_and_branch(owner):
    """Everything that copies a lane copies the API it speaks: + Lane and Clone, a shared
    setup, and a branch (with its answers' response ids and items)."""
    from chat import branching
    from chat.compare import lanes as lane_ops
    from chat.models import Message

    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    lane.api = "responses"
    lane.save()
    clone = lane_ops.lane_add(conversation=conversation, source=lane)  # Clone, and + Lane
    assert clone.api == "responses"
    setup = lane_ops.setup_of(conversation)
    assert setup[0]["api"] == "responses"
    shared = lane_ops.conversation_from_setup(owner=owner, setup=setup)
    assert [copied.api for copied in shared.lanes.all()] == ["responses", "responses"]
    Message.objects.create(conversation=conversation, turn=1, role="user", content="Hi")
    Message.objects.create(
        conversation=conversation, lane=lane, turn=1, role="assistant", content="Hello",
        api="responses", response_id="resp_1", output_items=[{"type": "message", "id": "m"}],
    )  # fmt: skip
    copy = branching.conversation_branch(
        conversation=conversation, upto_turn=1, with_answers=True, title="b"
    )
    assert [copied.api for copied in copy.lanes.all()] == ["responses", "responses"]
    answer = copy.messages.get(role="assistant")
    assert (answer.api, answer.response_id, answer.output_items) == (
        "responses", "resp_1", [{"type": "message", "id": "m"}],
    )  # fmt: skip


async def test_metadata_and_safety_identifier_are_sent_on_both_apis(owner):
    params = {"metadata": {"run": "a1"}, "safety_identifier": "user-7f3a"}
    conversation = await responses_conversation(owner, params=params)
    await send(owner, conversation, {"action": "send", "content": "Hi"})
    body = last_request()["json"]
    assert body["metadata"] == {"run": "a1"} and body["safety_identifier"] == "user-7f3a"


@pytest.mark.django_db
def test_an_image_goes_as_an_input_image_part_and_the_table_maps_every_parameter(owner):
    """The question's image part becomes input_image; each parameter of the table lands
    where the Responses API wants it, and chat-only ones are not sent."""
    from chat.turns import turn_save

    params = {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "response_format": "json_schema",
        "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
        "logprobs": True, "top_logprobs": 3, "reasoning_effort": "low",
        "reasoning_summary": "auto", "encrypted_reasoning": True, "store": False,
        "truncation": "auto", "user": "u1", "extra_body": {"top_k": 40},
        "seed": 7, "n": 2, "stop": ["x"], "presence_penalty": 0.5, "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100},
    }  # fmt: skip
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    conversation.lanes.update(api="responses", params=params)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    _, (placeholder,) = turn_save(conversation=conversation, content="What is it?", images=[image])
    body = placeholder.request_body
    assert body["input"] == [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What is it?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
    ]}]  # fmt: skip
    assert {k: v for k, v in body.items() if k not in ("model", "input", "stream")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 64,
        "text": {"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"},
                            "strict": True}},
        "include": ["message.output_text.logprobs", "reasoning.encrypted_content"],
        "top_logprobs": 3,
        "reasoning": {"effort": "low", "summary": "auto"},
        "store": False,
        "truncation": "auto",
        "user": "u1",
        "top_k": 40,
    }  # fmt: skip


async def test_a_refused_chain_after_tool_results_falls_back_to_a_well_ordered_input(owner):
    """chained_or_whole, a tool round, then the server refuses the chain: the whole input
    has each function_call before its output, once."""
    conversation = await responses_conversation(
        owner, params={"conversation_state": "chained_or_whole"}, tools=[WEATHER_ENTRY]
    )
    answer, call = await oslo_weather_call(owner, conversation)
    await on_personality(conversation, "responses-stateless")
    await send_result(owner, conversation, answer, call)
    sent = last_request()["json"]
    assert "previous_response_id" not in sent
    kinds = [(i.get("type"), i.get("role")) for i in sent["input"]]
    assert kinds == [("message", "user"), ("function_call", None), ("function_call_output", None)]
    final = (await messages_of(conversation))[-1]
    assert final.status == "complete" and "snow" in final.content


async def test_a_chain_whose_context_changed_goes_stateless(owner):
    """Chained turns continue the server's context only while it is what the page shows:
    after the first answer is asked again (its new attempt shown), or edited, the next
    turn sends the whole conversation as shown instead of chaining to a context that
    holds another answer."""
    conversation = await responses_conversation(owner, params={"conversation_state": "chained"})
    await send(owner, conversation, {"action": "send", "content": "First"})
    await send(owner, conversation, {"action": "send", "content": "Second"})
    assert "previous_response_id" in last_request()["json"]  # the chain holds
    await send(owner, conversation, {"action": "regenerate", "lane": 0, "turn": 1})
    await settled(conversation)  # the new attempt is saved
    await send(owner, conversation, {"action": "send", "content": "Third"})
    body = last_request()["json"]
    assert "previous_response_id" not in body
    texts = [i["content"][0]["text"] for i in body["input"] if i.get("type") == "message"]

    @database_sync_to_async
    def newest_first_answer():
        return conversation.messages.filter(role="assistant", turn=1).order_by("-id").first()

    assert (await newest_first_answer()).content in texts  # the attempt shown now
    assert texts[-1] == "Third"
    await send(owner, conversation, {"action": "send", "content": "Fourth"})
    assert "previous_response_id" in last_request()["json"]  # chained again from there

    @database_sync_to_async
    def edit_last_answer():
        answer = conversation.messages.filter(role="assistant").order_by("-id").first()
        answer.content = "An edited answer."
        answer.save(update_fields=["content"])

    await edit_last_answer()
    await send(owner, conversation, {"action": "send", "content": "Fifth"})
    body = last_request()["json"]
    assert "previous_response_id" not in body
    assert any(
        i.get("role") == "assistant" and i["content"][0]["text"] == "An edited answer."
        for i in body["input"]
    )
