"""Conversations to test the history features on (shared by their test files)."""

from __future__ import annotations

import base64
from typing import Any

from chat import conversations, profiles
from chat.models import Conversation, EndpointProfile, Lane, Message, Vote
from chat.render import render_markdown

# A real 1×1 PNG, as the composer would attach it.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()
IMAGE_URL = f"data:image/png;base64,{PNG}"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SECRET_KEY_VALUE = "sk-live-abcdefghijklmnop-SECRET"
SECRET_HEADER_VALUE = "x-secret-header-value-123"


def profile(owner: Any, name: str = "Work proxy", base_url: str = "https://llm.example.com/v1"):
    p = EndpointProfile(owner=owner, name=name, base_url=base_url, default_model="gpt-x")
    p.api_key = SECRET_KEY_VALUE
    p.extra_headers = {"X-Org": SECRET_HEADER_VALUE}
    p.save()
    return p


def rich_conversation(owner: Any) -> Conversation:
    """Two lanes on two endpoints, tools, an image, a tool call and its result, n > 1
    choices with logprobs, an earlier (hidden) attempt, an error and a vote."""
    first = profile(owner)
    second = profile(owner, "Local vLLM", "http://127.0.0.1:8001/v1")
    conversation = Conversation.objects.create(
        owner=owner,
        title="Weather in Paris, compared",
        system_prompt="Be brief.",
        tools=[{"tool": WEATHER_TOOL, "enabled": True, "mock": '{"temp": 18}'}],
        tool_choice="auto",
        pinned=True,
        blind=False,
    )
    a = Lane.objects.create(
        conversation=conversation,
        position=0,
        profile=first,
        model="gpt-x",
        params={"temperature": 0.2, "max_tokens": 200, "stop": ["\n\n"]},
    )
    b = Lane.objects.create(
        conversation=conversation,
        position=1,
        profile=second,
        model="llama-3",
        params={"n": 2, "logprobs": True, "top_logprobs": 2},
        system_prompt="Answer in French.",
        api="responses",
    )

    def answer(lane: Lane, turn: int, **fields: Any) -> Message:
        """An assistant message on ``lane``, from the lane's model."""
        return Message.objects.create(
            conversation=conversation, lane=lane, turn=turn, role="assistant", model=lane.model,
            **fields,
        )  # fmt: skip

    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "What's the weather?"}]}
    Message.objects.create(
        conversation=conversation,
        turn=1,
        role="user",
        content="What's the weather in Paris? <b>now</b>",
        content_parts=[
            {"type": "text", "text": "What's the weather in Paris? <b>now</b>"},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ],
    )
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    answer(
        a,
        1,
        status="complete",
        finish_reason="tool_calls",
        tool_calls=[call],
        usage={"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
        metrics={"ttft_ms": 120, "total_ms": 480, "tokens_per_s": 25.0},
        request_body=body,
        raw_response=[{"choices": [{"delta": {"tool_calls": [call]}}]}],
    )
    Message.objects.create(
        conversation=conversation,
        lane=a,
        turn=1,
        role="tool",
        tool_call_id="call_abc",
        name="get_weather",
        content='{"temp": 18, "sky": "cloudy"}',
    )
    answer(
        a,
        1,
        content="It is **18 °C** and cloudy in Paris.",
        rendered="<p>It is <strong>18 °C</strong> and cloudy in Paris.</p>",
        status="complete",
        finish_reason="stop",
        request_body=body,
        usage={"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        metrics={"ttft_ms": 90, "total_ms": 300, "tokens_per_s": 33.3, "cost": 0.0012},
    )
    answer(
        b,
        1,
        content="Old try",
        rendered="<p>Old try</p>",
        attempt=0,
        hidden=True,
        status="stopped",
    )
    answer(
        b,
        1,
        content="Il fait 18 degrés.",
        rendered="<p>Il fait 18 degrés.</p>",
        attempt=1,
        status="complete",
        finish_reason="stop",
        choices=[
            {
                "index": 0,
                "content": "Il fait 18 degrés.",
                "finish_reason": "stop",
                "logprobs": [{"token": "Il", "logprob": -0.1, "top_logprobs": []}],
                "html": "<p>Il fait 18 degrés.</p>",
            },
            {
                "index": 1,
                "content": "Nuageux, *18*.",
                "finish_reason": "length",
                "logprobs": None,
                "html": "<p>Nuageux, <em>18</em>.</p>",
            },
        ],
        chosen=0,
        logprobs=[{"token": "Il", "logprob": -0.1, "top_logprobs": []}],
        request_body={"model": "llama-3", "n": 2},
        api="responses",
        response_id="resp_b1",
        output_items=[
            {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA"},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Il fait 18 degrés."}],
            },
        ],  # fmt: skip
    )
    Message.objects.create(conversation=conversation, turn=2, role="user", content="And tomorrow?")
    answer(
        a,
        2,
        content="Partial",
        status="error",
        error={"status": 503, "message": "Overloaded at https://llm.example.com/v1", "type": "x"},
        request_body=body,
    )
    answer(
        b,
        2,
        content="Demain, pluie.",
        rendered="<p>Demain, pluie.</p>",
        status="complete",
        finish_reason="stop",
    )
    Vote.objects.create(
        owner=owner,
        conversation=conversation,
        turn=1,
        verdict="winner",
        winner_position=1,
        lanes=[{"position": 0, "label": "A", "profile": "Work proxy", "model": "gpt-x"}],
    )
    return conversation


def chat_with(owner: Any, title: str, *texts: str) -> Conversation:
    """A one-lane conversation on the demo endpoint with the given message texts
    (alternating user / assistant)."""
    p = profiles.profile_ensure_demo(owner=owner)
    conversation = conversations.conversation_create(owner=owner, profile=p, model="demo")
    conversation.title = title
    conversation.save()
    lane = conversation.lanes.get()
    for i, text in enumerate(texts):
        user = i % 2 == 0
        Message.objects.create(
            conversation=conversation,
            lane=None if user else lane,
            turn=i // 2 + 1,
            role="user" if user else "assistant",
            content=text,
            rendered="" if user else str(render_markdown(text)),
            status="complete",
        )
    return conversation
