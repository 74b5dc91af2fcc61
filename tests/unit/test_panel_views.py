from __future__ import annotations

import pytest
from django.urls import reverse

from chat import conversations, request_body, turns
from chat.compare import lane_add
from chat.models import EndpointProfile, Message, Preset
from chat.tools import TEMPLATES

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    return conversations.conversation_create(owner=owner, profile=profile, model="demo")


@pytest.fixture
def answer(conversation):
    user, (answer,) = turns.turn_save(conversation=conversation, content="Hi")
    lane = conversation.lanes.get()
    lane.params = {"temperature": 0.2}
    body = request_body.request_body_build(lane=lane, assistant=answer)
    Message.objects.filter(pk=answer.pk).update(
        status="complete",
        content="Hello!",
        request_body=body,
        raw_response=['{"choices": []}', "[DONE]"],
        metrics={"ttft_ms": 12, "total_ms": 40},
    )
    return Message.objects.get(pk=answer.pk)


def test_the_panel_autosaves_valid_values_and_reports_errors_inline(owner_client, conversation):
    url = reverse("chat:params_save", args=[conversation.pk])
    response = owner_client.post(url, {"param:temperature": "0.4", "param:stop": "###"})
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert conversation.lanes.get().params == {"temperature": 0.4, "stop": ["###"]}
    response = owner_client.post(url, {"param:temperature": "9", "param:stop": ""})
    page = response.content.decode()
    assert "must be at most 2" in page and "Not saved" in page
    assert 'id="error-temperature"' in page
    # an invalid submission changes nothing
    assert conversation.lanes.get().params == {"temperature": 0.4, "stop": ["###"]}


def test_the_conversation_page_shows_the_lanes_values(owner_client, conversation):
    lane = conversation.lanes.get()
    lane.params = {"temperature": 0.4, "stop": ["\n\n", "END"], "logit_bias": {"5": -3}}
    lane.save()
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert 'name="param:temperature" value="0.4"' in page
    assert "\\n\\n\nEND</textarea>" in page
    assert "&quot;5&quot;: -3" in page


def test_presets_save_apply_update_and_delete(owner_client, owner, conversation):
    save = reverse("chat:preset_save", args=[conversation.pk])
    conversation.system_prompt = "Answer in French."
    conversation.save()
    owner_client.post(
        save, {"preset_name": "Precise", "param:temperature": "0.1", "preset_system": "1"}
    )
    preset = Preset.objects.get(owner=owner, name="Precise")
    assert preset.params == {"temperature": 0.1} and preset.system_prompt == "Answer in French."
    # update in place
    page = owner_client.post(save, {"preset_name": "Precise", "param:temperature": "0.3"})
    assert "updated" in page.content.decode()
    preset.refresh_from_db()
    assert preset.params == {"temperature": 0.3} and Preset.objects.count() == 1
    # apply to another conversation
    other = conversations.conversation_create(
        owner=owner, profile=conversation.lanes.get().profile, model="demo"
    )
    owner_client.post(reverse("chat:preset_apply", args=[other.pk]), {"preset": preset.pk})
    assert other.lanes.get().params == {"temperature": 0.3}
    owner_client.post(reverse("chat:preset_delete", args=[other.pk]), {"preset": preset.pk})
    assert not Preset.objects.exists()


WEATHER = {"tool": TEMPLATES["weather"], "enabled": True, "mock": '{"temp": 18}'}
CALC = {"tool": TEMPLATES["calculator"], "enabled": False, "mock": "14"}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def test_a_preset_saved_with_the_tools_restores_them_and_the_tool_choice(
    owner_client, owner, conversation
):
    conversation.tools = [WEATHER, CALC]  # the calculator kept but switched off
    conversation.tool_choice = NAMED
    conversation.save()
    save = reverse("chat:preset_save", args=[conversation.pk])
    owner_client.post(
        save, {"preset_name": "Weather", "param:temperature": "0.2", "preset_tools": "1"}
    )
    preset = Preset.objects.get(owner=owner, name="Weather")
    assert preset.tools == [WEATHER, CALC] and preset.tool_choice == NAMED

    other = conversations.conversation_create(
        owner=owner, profile=conversation.lanes.get().profile, model="demo"
    )
    page = owner_client.post(
        reverse("chat:preset_apply", args=[other.pk]), {"preset": preset.pk}
    ).content.decode()
    other.refresh_from_db()
    assert other.tools == [WEATHER, CALC] and other.tool_choice == NAMED
    assert other.lanes.get().params == {"temperature": 0.2}
    # The tools editor elsewhere on the page is swapped with the restored tools.
    assert 'id="tools-panel"' in page and 'hx-swap-oob="true"' in page
    assert 'value="function:get_weather" selected' in page
    # ... and they are what the next request sends: the enabled one, with its choice.
    lane = other.lanes.get()
    draft = Message(conversation=other, lane=lane, turn=1, role=Message.Role.ASSISTANT)
    body = request_body.request_body_build(lane=lane, assistant=draft)
    assert body["tools"] == [TEMPLATES["weather"]] and body["tool_choice"] == NAMED

    # Updating the preset with other tools replaces them; without the box, they go.
    conversation.tools = [CALC | {"enabled": True}]
    conversation.tool_choice = "required"
    conversation.save()
    owner_client.post(save, {"preset_name": "Weather", "preset_tools": "1"})
    preset.refresh_from_db()
    assert preset.tools == [CALC | {"enabled": True}] and preset.tool_choice == "required"
    owner_client.post(save, {"preset_name": "Weather"})
    preset.refresh_from_db()
    assert preset.tools is None and preset.tool_choice is None


def test_a_preset_without_tools_leaves_the_tools_alone(owner_client, owner, conversation):
    owner_client.post(
        reverse("chat:preset_save", args=[conversation.pk]),
        {"preset_name": "Sampling", "param:top_p": "0.5"},
    )
    preset = Preset.objects.get(owner=owner, name="Sampling")
    assert preset.tools is None
    other = conversations.conversation_create(
        owner=owner, profile=conversation.lanes.get().profile, model="demo"
    )
    other.tools, other.tool_choice = [WEATHER], "auto"
    other.save()
    page = owner_client.post(
        reverse("chat:preset_apply", args=[other.pk]), {"preset": preset.pk}
    ).content.decode()
    other.refresh_from_db()
    assert other.tools == [WEATHER] and other.tool_choice == "auto"
    assert 'id="tools-panel"' not in page


def test_a_preset_with_no_tools_clears_them(owner_client, owner, conversation):
    owner_client.post(
        reverse("chat:preset_save", args=[conversation.pk]),
        {"preset_name": "Bare", "preset_tools": "1"},
    )
    preset = Preset.objects.get(owner=owner, name="Bare")
    assert preset.tools == [] and preset.tool_choice is None
    other = conversations.conversation_create(
        owner=owner, profile=conversation.lanes.get().profile, model="demo"
    )
    other.tools, other.tool_choice = [WEATHER], NAMED
    other.save()
    owner_client.post(reverse("chat:preset_apply", args=[other.pk]), {"preset": preset.pk})
    other.refresh_from_db()
    assert other.tools == [] and other.tool_choice is None


def test_a_preset_applied_to_one_lane_of_a_comparison_gives_it_its_own_tools(
    owner_client, owner, conversation
):
    preset = Preset.objects.create(
        owner=owner, name="Tools", params={}, tools=[WEATHER], tool_choice="required"
    )
    first = conversation.lanes.get()
    second = lane_add(conversation=conversation)
    owner_client.post(
        reverse("chat:preset_apply", args=[conversation.pk]),
        {"preset": preset.pk, "panel_lane": second.pk},
    )
    second.refresh_from_db()
    first.refresh_from_db()
    conversation.refresh_from_db()
    assert second.tools == [WEATHER] and first.tools is None
    assert conversation.tools == [] and conversation.tool_choice == "required"


def test_the_preset_list_says_what_a_preset_carries(owner_client, owner, conversation):
    Preset.objects.create(owner=owner, name="Plain", params={"seed": 1})
    Preset.objects.create(owner=owner, name="Full", system_prompt="Be brief.", tools=[])
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert ">Plain</option>" in page
    assert ">Full (+ system prompt, tools)</option>" in page
    assert 'name="preset_tools"' in page


def test_a_preset_with_invalid_values_is_not_saved(owner_client, conversation):
    response = owner_client.post(
        reverse("chat:preset_save", args=[conversation.pk]),
        {"preset_name": "Bad", "param:top_p": "3"},
    )
    assert "Fix the parameters" in response.content.decode()
    assert not Preset.objects.exists()


def test_another_users_preset_cannot_be_applied_or_deleted(client, outsider, owner, conversation):
    preset = Preset.objects.create(owner=owner, name="Mine", params={"seed": 1})
    client.force_login(outsider)
    theirs = conversations.conversation_create(
        owner=outsider, profile=EndpointProfile.objects.get(owner=outsider), model="demo"
    )
    for name in ("preset_apply", "preset_delete"):
        response = client.post(reverse(f"chat:{name}", args=[theirs.pk]), {"preset": preset.pk})
        assert response.status_code == 404
    assert Preset.objects.filter(pk=preset.pk).exists()


def test_the_inspector_shows_the_exact_body_and_the_raw_response(owner_client, answer):
    url = reverse("chat:message_inspect", args=[answer.conversation_id, answer.pk])
    page = owner_client.get(url).content.decode()
    assert "&quot;temperature&quot;: 0.2" in page
    assert "[DONE]" in page and "12 ms" in page


def test_code_export_uses_the_saved_body_and_no_secret(owner_client, owner, answer):
    profile = answer.lane.profile
    profile.api_key = "sk-very-secret-value-1234"
    profile.extra_headers = {"X-Team": "team-secret"}
    profile.save()
    url = reverse("chat:message_code", args=[answer.conversation_id, answer.pk])
    page = owner_client.get(url).content.decode()
    assert "curl" in page and "from openai import OpenAI" in page and "fetch(" in page
    assert "OPENAI_API_KEY" in page and "X_TEAM" in page
    assert "sk-very-secret-value-1234" not in page and "team-secret" not in page
    assert "&quot;temperature&quot;: 0.2" in page or "'temperature': 0.2" in page


def test_draft_code_uses_the_composer_and_the_panel(owner_client, conversation):
    url = reverse("chat:draft_code", args=[conversation.pk])
    page = owner_client.post(
        url, {"content": "What about this?", "param:seed": "99"}
    ).content.decode()
    assert "What about this?" in page and "99" in page
    bad = owner_client.post(url, {"content": "x", "param:seed": "abc"}).content.decode()
    assert "Fix the parameters first" in bad


def test_request_views_are_scoped_to_the_owner(client, outsider, answer):
    client.force_login(outsider)
    args = [answer.conversation_id, answer.pk]
    assert client.get(reverse("chat:message_inspect", args=args)).status_code == 404
    assert client.get(reverse("chat:message_code", args=args)).status_code == 404
    assert client.post(reverse("chat:message_choose", args=[*args, 0])).status_code == 404
    convo = [answer.conversation_id]
    assert client.post(reverse("chat:params_save", args=convo)).status_code == 404
    assert client.post(reverse("chat:draft_code", args=convo)).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_new_conversation_can_be_in_completions_mode(owner_client, owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    response = owner_client.post(
        reverse("chat:conversation_new"),
        {"profile": profile.pk, "model": "demo-fast", "content": "Once upon", "mode": "completion"},
    )
    assert response.status_code == 302
    conversation = owner.conversations.get()
    assert conversation.mode == "completion"
    page = owner_client.get(response["Location"]).content.decode()
    assert "Prompt" in page and "completions" in page
