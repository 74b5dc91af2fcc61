"""Export (JSON, Markdown, everything) and import (this app's JSON, OpenAI messages)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat import compare, exports, imports, profiles, request_body
from chat.models import Conversation, Lane, Message, Vote
from tests.integration.history_world import (
    IMAGE_URL,
    SECRET_HEADER_VALUE,
    SECRET_KEY_VALUE,
    WEATHER_TOOL,
    chat_with,
    rich_conversation,
)

pytestmark = pytest.mark.django_db
SVG = "data:image/svg+xml;base64,AA=="


def _strip_ids(document: dict) -> dict:
    """An export without what may differ between two copies: ids and the export time."""
    out = json.loads(json.dumps(document))
    out.pop("exported_at")
    for conversation in out["conversations"]:
        conversation.pop("id")
    return out


def _export(client, conversation: Conversation) -> dict:
    response = client.get(reverse("chat:export_json", args=[conversation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    return json.loads(response.content)


def test_export_then_import_then_export_gives_the_same_json(owner_client, owner):
    original = rich_conversation(owner)
    first = _export(owner_client, original)

    upload = SimpleUploadedFile("c.json", json.dumps(first).encode(), "application/json")
    response = owner_client.post(reverse("chat:import"), {"file": upload})
    assert response.status_code == 302
    copy = Conversation.objects.exclude(pk=original.pk).get(owner=owner)
    assert response["Location"] == reverse("chat:conversation", args=[copy.pk])

    second = _export(owner_client, copy)
    assert _strip_ids(second) == _strip_ids(first)
    # And the copy really is a copy: its own lanes on the same endpoints, its own rows.
    assert [lane.profile.name for lane in copy.lanes.all()] == ["Work proxy", "Local vLLM"]
    assert copy.messages.count() == original.messages.count() == 9
    assert Vote.objects.filter(conversation=copy).count() == 1


def test_the_export_is_lossless_and_names_endpoints_without_secrets(owner_client, owner):
    conversation = rich_conversation(owner)
    response = owner_client.get(reverse("chat:export_json", args=[conversation.pk]))
    text = response.content.decode()
    assert SECRET_KEY_VALUE not in text and SECRET_KEY_VALUE[-4:] not in text
    assert SECRET_HEADER_VALUE not in text and "extra_headers" not in text
    data = json.loads(text)
    assert data["format"] == "playground.conversations" and data["version"] == 1
    (conv,) = data["conversations"]
    assert conv["title"] == "Weather in Paris, compared"
    assert conv["pinned"] is True and conv["tool_choice"] == "auto"
    assert conv["tools"][0]["tool"] == WEATHER_TOOL
    assert conv["lanes"][0]["profile"] == {
        "name": "Work proxy",
        "base_url": "https://llm.example.com/v1",
    }
    assert conv["lanes"][1]["params"] == {"n": 2, "logprobs": True, "top_logprobs": 2}
    assert conv["lanes"][1]["system_prompt"] == "Answer in French."
    assert [lane["api"] for lane in conv["lanes"]] == ["", "responses"]
    (on_responses,) = [m for m in conv["messages"] if m["api"] == "responses"]
    assert on_responses["response_id"] == "resp_b1"
    assert [i["type"] for i in on_responses["output_items"]] == ["reasoning", "message"]
    assert on_responses["output_items"][0]["encrypted_content"] == "gAAAA"
    roles = [(m["turn"], m["role"], m["lane"]) for m in conv["messages"]]
    assert roles[:3] == [(1, "user", None), (1, "assistant", 0), (1, "tool", 0)]
    user, call, result = conv["messages"][:3]
    assert user["content_parts"][1]["image_url"]["url"] == IMAGE_URL
    assert call["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    assert call["usage"]["total_tokens"] == 42 and call["metrics"]["ttft_ms"] == 120
    assert call["request_body"]["model"] == "gpt-x" and call["raw_response"]
    assert result["tool_call_id"] == "call_abc" and result["name"] == "get_weather"
    hidden = [m for m in conv["messages"] if m["hidden"]]
    assert [(m["attempt"], m["status"]) for m in hidden] == [(0, "stopped")]
    choices = next(m for m in conv["messages"] if m["choices"])["choices"]
    assert [c["finish_reason"] for c in choices] == ["stop", "length"]
    assert all("html" not in c for c in choices)  # derived, re-made on import
    assert all("rendered" not in m for m in conv["messages"])
    error = next(m for m in conv["messages"] if m["status"] == "error")
    assert error["error"]["status"] == 503
    assert conv["votes"][0]["verdict"] == "winner"


def test_markdown_export_is_a_readable_transcript(owner_client, owner):
    conversation = rich_conversation(owner)
    response = owner_client.get(reverse("chat:export_markdown", args=[conversation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert text.startswith("# Weather in Paris, compared\n")
    assert "## Turn 1" in text and "## Turn 2" in text
    assert "**You**" in text and "What's the weather in Paris? <b>now</b>" in text
    assert "**Assistant · lane A · gpt-x**" in text and "**Assistant · lane B · llama-3**" in text
    assert "*Tool call* `get_weather` (call_abc)" in text
    assert '```json\n{"city": "Paris"}\n```' in text
    assert "Tool result · `get_weather`" in text
    assert "It is **18 °C** and cloudy in Paris." in text
    assert "Image 1: attached image/png" in text and "base64" not in text
    assert "Old try" not in text  # an earlier attempt, hidden
    assert "*(error: Overloaded" in text
    assert SECRET_KEY_VALUE not in text and "llm.example.com" not in text.split("error")[0]


def test_a_blind_markdown_export_letters_answers_as_the_page_does(owner_client, owner):
    conversation = rich_conversation(owner)
    Conversation.objects.filter(pk=conversation.pk).update(blind=True)
    conversation.refresh_from_db()
    text = owner_client.get(reverse("chat:export_markdown", args=[conversation.pk])).content
    text = text.decode()
    assert "gpt-x" not in text and "llama-3" not in text and "lane A" not in text
    assert "2 lanes, hidden: blind comparison" in text
    lanes = list(conversation.lanes.all())
    letters = compare.turn_letters(conversation, 1, lanes)
    first = conversation.messages.filter(turn=1, role="assistant", hidden=False).first()
    assert f"**Assistant · answer {letters[first.lane_id]}**" in text


def test_fences_in_markdown_outrun_backticks_in_the_text(owner_client, owner):
    conversation = chat_with(owner, "Fences", "q")
    Message.objects.create(
        conversation=conversation,
        lane=conversation.lanes.get(),
        turn=1,
        role="tool",
        tool_call_id="c1",
        name="f",
        content="```\nnot the end\n```",
    )
    text = owner_client.get(reverse("chat:export_markdown", args=[conversation.pk])).content
    assert b"````\n```\nnot the end\n```\n````" in text


# The test client is synchronous: Django consumes the async stream for it, and says so.
_SYNC_STREAM = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")


@_SYNC_STREAM
def test_export_all_streams_every_own_conversation_and_no_other(owner_client, owner, outsider):
    mine = [chat_with(owner, f"Mine {i}", "hello", "hi") for i in range(3)]
    chat_with(outsider, "Not mine", "secret question")
    response = owner_client.get(reverse("chat:export_all"))
    assert response.status_code == 200 and response.streaming
    data = json.loads(b"".join(response))
    assert data["format"] == "playground.conversations"
    assert sorted(c["title"] for c in data["conversations"]) == sorted(c.title for c in mine)
    assert all(len(c["messages"]) == 2 for c in data["conversations"])


@_SYNC_STREAM
def test_export_all_of_nothing_is_a_valid_document(owner_client):
    response = owner_client.get(reverse("chat:export_all"))
    data = json.loads(b"".join(response))
    assert data["conversations"] == []


def test_another_users_conversation_cannot_be_exported(owner_client, outsider):
    theirs = chat_with(outsider, "Theirs", "q")
    for name in ("chat:export_json", "chat:export_markdown"):
        assert owner_client.get(reverse(name, args=[theirs.pk])).status_code == 404


def _import(client, payload, *, as_text: bool = False):
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    if as_text:
        return client.post(reverse("chat:import"), {"text": raw})
    upload = SimpleUploadedFile("import.json", raw.encode(), "application/json")
    return client.post(reverse("chat:import"), {"file": upload})


def test_openai_messages_become_a_one_lane_conversation_on_the_default_endpoint(
    owner_client, owner
):
    default = profiles.profile_default(owner=owner)
    messages = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "assistant", "content": "It is **18 °C**."},
        {"role": "user", "content": "Thanks"},
    ]
    response = _import(owner_client, messages, as_text=True)
    assert response.status_code == 302
    conversation = Conversation.objects.get(owner=owner)
    assert conversation.system_prompt == "You are terse."
    assert conversation.title == "Weather in Paris?"
    lane = conversation.lanes.get()
    assert lane.profile == default and lane.model == default.default_model
    rows = list(conversation.messages.order_by("turn", "id"))
    assert [(m.turn, m.role, m.lane_id is not None) for m in rows] == [
        (1, "user", False),
        (1, "assistant", True),
        (1, "tool", True),
        (1, "assistant", True),
        (2, "user", False),
    ]
    assert rows[0].content == "Weather in Paris?"
    assert rows[0].content_parts[1]["image_url"]["url"] == IMAGE_URL
    assert rows[1].tool_calls[0]["id"] == "call_1" and rows[1].finish_reason == "tool_calls"
    assert rows[2].tool_call_id == "call_1"
    assert rows[3].rendered == "<p>It is <strong>18 °C</strong>.</p>\n"
    # It continues like any conversation: the next request carries the whole history.
    placeholder = Message(conversation=conversation, lane=lane, turn=3, role="assistant")
    body = request_body.request_body_build(lane=lane, assistant=placeholder)
    assert [m["role"] for m in body["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "user",
    ]  # fmt: skip


def test_a_request_body_imports_its_model_and_tools(owner_client, owner):
    body = {
        "model": "demo-slow",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "temperature": 0.3,
    }
    assert _import(owner_client, body).status_code == 302
    conversation = Conversation.objects.get(owner=owner)
    assert conversation.lanes.get().model == "demo-slow"
    assert conversation.tools == [{"tool": WEATHER_TOOL, "enabled": True, "mock": ""}]
    assert conversation.tool_choice == "required"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{not json", "Not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"hello": 1}', "Not a file this app reads"),
        ([{"role": "robot", "content": "x"}], "[0].role: 'robot' is not one of"),
        ([{"role": "user", "content": 5}], "[0].content: 5 is not of type"),
        ([{"role": "tool", "content": "x"}], "[0].tool_call_id: a tool result needs"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "[0].content[0].image_url.url: an image URL must be http(s)",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": SVG}}]}],
            "a data URL must be a base64 PNG, JPEG, GIF or WebP image",
        ),
        ({"messages": [], "model": "m"}, "messages: [] should be non-empty"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
         'tools[0]: needs a "function" object'),
        ({"format": "playground.conversations", "version": 9, "conversations": []},
         "version: this file is format version 9; this app reads up to version 1"),
    ],
)  # fmt: skip
def test_import_refuses_bad_input_saying_where(owner_client, owner, payload, expected):
    response = _import(owner_client, payload)
    assert response.status_code == 400
    assert expected in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert not Conversation.objects.filter(owner=owner).exists()


def test_an_invalid_second_conversation_imports_nothing_at_all(owner_client, owner):
    good = exports.conversation_export(conversation=chat_with(owner, "Good", "q", "a"))
    bad = json.loads(json.dumps(good["conversations"][0]))
    bad["messages"][1]["lane"] = 4
    bad["messages"][0]["status"] = "exploded"
    bad["lanes"][0]["params"] = {"temperature": 9}
    document = {**good, "conversations": [good["conversations"][0], bad]}
    before = (Conversation.objects.count(), Message.objects.count(), Lane.objects.count())
    response = _import(owner_client, document)
    text = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 400
    assert "conversations[1].messages[0].status: 'exploded' is not one of" in text
    # Semantic checks run only on a file of the right shape; fix the shape, see the rest.
    bad["messages"][0]["status"] = "complete"
    response = _import(owner_client, document)
    text = response.content.decode()
    assert "conversations[1].messages[1].lane: no lane has position 4" in text
    assert "conversations[1].lanes[0].params.temperature: must be at most 2" in text
    assert (Conversation.objects.count(), Message.objects.count(), Lane.objects.count()) == before


def test_imported_html_is_never_trusted(owner, outsider):
    document = exports.conversation_export(conversation=chat_with(outsider, "T", "q", "fine"))
    conv = document["conversations"][0]
    answer = conv["messages"][1]
    answer["content"] = "<script>alert(1)</script> *ok*"
    answer["choices"] = [{"index": 0, "content": "x", "html": "<img src=x onerror=alert(1)>"}]
    result = imports.import_data(owner=owner, data=document)
    message = result.conversations[0].messages.get(role="assistant")
    assert "<script>" not in message.rendered and "&lt;script&gt;" in message.rendered
    assert message.choices[0]["html"] == "<p>x</p>\n"


def test_an_unknown_endpoint_leaves_the_lane_to_pick_and_says_so(owner_client, owner, outsider):
    document = exports.conversation_export(conversation=rich_conversation(outsider))
    result = imports.import_data(owner=owner, data=document)
    lanes = list(result.conversations[0].lanes.all())
    # The outsider's endpoints are never matched (they are not the importer's).
    assert [lane.profile for lane in lanes] == [None, None]
    assert any("Work proxy" in note for note in result.notes)


def test_a_streaming_answer_imports_as_interrupted(owner):
    document = exports.conversation_export(conversation=chat_with(owner, "S", "q", "partial"))
    document["conversations"][0]["messages"][1]["status"] = "streaming"
    result = imports.import_data(owner=owner, data=document)
    assert result.conversations[0].messages.get(role="assistant").status == "interrupted"


def test_the_import_file_size_is_limited(owner_client, owner, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = _import(owner_client, [{"role": "user", "content": "x" * 200}])
    assert response.status_code == 400
    assert b"the limit is" in response.content
    assert not Conversation.objects.filter(owner=owner).exists()


def test_the_import_page_shows_the_form(owner_client):
    response = owner_client.get(reverse("chat:import"))
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_an_empty_import_asks_for_a_file(owner_client):
    response = owner_client.post(reverse("chat:import"), {})
    assert response.status_code == 400 and b"Choose a file" in response.content


def test_import_and_export_need_the_csrf_token(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("chat:import"), {"text": '[{"role":"user","content":"x"}]'})
    assert response.status_code == 403
    assert not Conversation.objects.filter(owner=owner).exists()


def test_nul_characters_are_replaced_not_a_crash(owner_client, owner):
    """PostgreSQL stores no NUL in text or jsonb: it becomes U+FFFD, as in a typed message."""
    messages = [
        {"role": "user", "content": "a\u0000b"},
        {"role": "assistant", "content": "c\u0000d", "tool_calls": None},
    ]
    assert _import(owner_client, messages).status_code == 302
    rows = Conversation.objects.get(owner=owner).messages.order_by("id")
    assert [m.content for m in rows] == ["a\ufffdb", "c\ufffdd"]
    document = exports.conversation_export(conversation=chat_with(owner, "N", "q", "a"))
    document["conversations"][0]["messages"][1]["usage"] = {"note\u0000": "x\u0000"}
    result = imports.import_data(owner=owner, data=document)
    usage = result.conversations[0].messages.get(role="assistant").usage
    assert usage == {"note\ufffd": "x\ufffd"}
