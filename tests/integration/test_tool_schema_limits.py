"""Hostile tool schemas on every path that accepts tools: a schema nested 200 deep and a
129th tool get a clear message (never a 500), and a ReDoS pattern is checked once, when
the answer is saved, never at render."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat.models import Conversation
from chat.toolschema import MAX_SCHEMA_DEPTH, MAX_TOOLS
from tests.integration.test_consumer import connect, messages_of
from tests.integration.test_tools_flow import conversation_with_tools, send

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = {
    "type": "function",
    "function": {
        "name": "evil",
        "parameters": {"type": "object",
                       "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}},
    },
}  # fmt: skip


def deep_tool(levels: int = 200) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return {"type": "function", "function": {"name": "deep", "parameters": schema}}


def many_tools(count: int = MAX_TOOLS + 1) -> list[str]:
    return [json.dumps({"name": f"t{i}", "parameters": {"type": "object"}}) for i in range(count)]


def form(jsons: list[str]) -> dict:
    return {"tool_json": jsons, "tool_mock": [""] * len(jsons),
            "tool_enabled": [str(i) for i in range(len(jsons))], "tool_choice": ""}  # fmt: skip


@pytest.mark.parametrize(
    ("jsons", "expected"),
    [([json.dumps(deep_tool())], f"nested more than {MAX_SCHEMA_DEPTH} levels deep"),
     (many_tools(), f"at most {MAX_TOOLS}")],
    ids=["deep", "too_many"],
)  # fmt: skip
@pytest.mark.parametrize("view", ["chat:tools_save", "chat:tools_edit"])
def test_the_tools_form_refuses_a_deep_schema_and_a_129th_tool_clearly(
    owner_client, owner, view, jsons, expected
):
    conversation = Conversation.objects.create(owner=owner, title="t")
    response = owner_client.post(reverse(view, args=[conversation.pk]), form(jsons))
    assert response.status_code == 200
    assert expected in response.content.decode()
    conversation.refresh_from_db()
    assert not conversation.tools


@pytest.mark.parametrize(
    ("jsons", "expected"),
    [([json.dumps(deep_tool())], f"nested more than {MAX_SCHEMA_DEPTH} levels deep"),
     (many_tools(), f"at most {MAX_TOOLS}")],
    ids=["deep", "too_many"],
)  # fmt: skip
async def test_the_socket_refuses_a_deep_schema_and_a_129th_tool_clearly(owner, jsons, expected):
    conversation = await conversation_with_tools(owner)
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps({"action": "send", "content": "Go", **form(jsons)}))
    reply = await comm.receive_from(timeout=10)
    await comm.disconnect()
    assert "Fix the tools first" in reply and expected in reply
    assert "failed on the server" not in reply
    assert await database_sync_to_async(conversation.messages.count)() == 0


@pytest.mark.parametrize(
    ("tools", "expected"),
    # 20 levels: deeper than a schema may be, not than an import file may (64).
    [([deep_tool(20)], f"nested more than {MAX_SCHEMA_DEPTH} levels deep"),
     ([deep_tool(200)], "nest more than 64 deep"),
     ([{"type": "function", "function": {"name": f"t{i}"}} for i in range(MAX_TOOLS + 1)],
      f"at most {MAX_TOOLS}")],
    ids=["deep", "deeper_than_a_file", "too_many"],
)  # fmt: skip
def test_an_import_refuses_a_deep_schema_and_a_129th_tool_clearly(
    owner_client, owner, tools, expected
):
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": tools}
    upload = SimpleUploadedFile("i.json", json.dumps(body).encode(), "application/json")
    response = owner_client.post(reverse("chat:import"), {"file": upload})
    assert response.status_code == 400 and expected in response.content.decode()
    assert not Conversation.objects.filter(owner=owner).exists()


def test_a_deep_response_format_schema_is_refused_clearly():
    from chat.params import PARAMS, ParamError, clean_value

    param = next(p for p in PARAMS if p.name == "json_schema")
    schema = deep_tool()["function"]["parameters"]
    with pytest.raises(ParamError, match="levels deep"):
        clean_value(param, json.dumps(schema))


async def test_an_evil_pattern_is_checked_once_when_saved_and_never_at_render(
    owner, client, monkeypatch
):
    conversation = await conversation_with_tools(owner)
    conversation.tools = [{"tool": EVIL, "enabled": True, "mock": ""}]
    await database_sync_to_async(conversation.save)()
    calls = [{"name": "evil", "arguments": {"s": "a" * 30 + "!"}}]
    script = json.dumps({"tool_calls": calls})
    await send(owner, conversation, {"action": "send", "content": f"Go\n@fake {script}"})
    _, answer = await messages_of(conversation)
    assert answer.status == "complete", answer.error
    (verdict,) = answer.tool_verdicts
    assert verdict["state"] == "error" and "does not match" in verdict["error"]

    # A page render reads the stored verdict: any validation there would fail loudly.
    def refuse(*args, **kwargs):
        raise AssertionError("validated at render")

    import jsonschema

    monkeypatch.setattr("chat.toolschema.arguments_verdict", refuse)
    monkeypatch.setattr(jsonschema.validators, "validator_for", refuse)
    await database_sync_to_async(client.force_login)(owner)
    url = reverse("chat:conversation", args=[conversation.pk])
    page = await database_sync_to_async(client.get)(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Does not match the tool&#x27;s schema" in html and "badge-error" in html


async def test_an_answer_saved_before_verdicts_shows_not_checked(owner, client):
    conversation = await conversation_with_tools(owner)
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    script = json.dumps({"tool_calls": calls})
    await send(owner, conversation, {"action": "send", "content": f"Go\n@fake {script}"})
    _, answer = await messages_of(conversation)
    assert answer.tool_verdicts == [{"state": "ok", "error": ""}]
    answer.tool_verdicts = None  # as saved before this release
    await database_sync_to_async(answer.save)()
    await database_sync_to_async(client.force_login)(owner)
    url = reverse("chat:conversation", args=[conversation.pk])
    page = await database_sync_to_async(client.get)(url)
    assert "not checked" in page.content.decode()
