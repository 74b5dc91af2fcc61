"""A conversation page costs the same number of queries whatever its length."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat import conversations, profiles
from chat.models import Message

pytestmark = pytest.mark.django_db

ANSWER_KINDS = [
    {"status": "complete", "finish_reason": "stop", "rendered": "<p>Fine.</p>",
     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
     "metrics": {"ttft_ms": 90, "total_ms": 400, "tokens_per_s": 5.0}},
    {"status": "stopped", "content": "Partial"},
    {"status": "error", "content": "Cut", "error": {"status": 503, "message": "Overloaded"}},
    {"status": "complete", "finish_reason": "tool_calls",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "lookup", "arguments": "{}"}}]},
    {"status": "complete", "reasoning": "Thinking…", "rendered": "<p>Done.</p>"},
]  # fmt: skip


def conversation_with(owner, count: int):
    profile = profiles.profile_ensure_demo(owner=owner)
    conversation = conversations.conversation_create(owner=owner, profile=profile, model="demo")
    lane = conversation.lanes.get()
    messages = []
    for i in range(count):
        turn = i // 2 + 1
        if i % 2 == 0:
            messages.append(
                Message(conversation=conversation, turn=turn, role="user", content=f"Q{turn}")
            )
        else:
            kind = ANSWER_KINDS[turn % len(ANSWER_KINDS)]
            messages.append(
                Message(
                    conversation=conversation,
                    lane=lane,
                    turn=turn,
                    role="assistant",
                    model="demo",
                    content=kind.get("content", f"Answer {turn}"),
                    request_body={"messages": [{"role": "user", "content": "x" * 1000}]},
                    **{k: v for k, v in kind.items() if k != "content"},
                )
            )
    Message.objects.bulk_create(messages)
    return conversation


def page_queries(client, owner, count: int) -> int:
    conversation = conversation_with(owner, count)
    url = reverse("chat:conversation", args=[conversation.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-role="assistant"') == count // 2
    assert body.count('data-role="user"') == (count + 1) // 2
    return len(queries.captured_queries)


def test_the_conversation_page_makes_as_many_queries_for_500_messages_as_for_5(owner_client, owner):
    page_queries(owner_client, owner, 5)  # warms what is cached once per process
    few = page_queries(owner_client, owner, 5)
    many = page_queries(owner_client, owner, 500)
    assert many == few, f"{few} queries for 5 messages but {many} for 500"
