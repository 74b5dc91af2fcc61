"""One system-prompt limit (SYSTEM_PROMPT_MAX_CHARS), one message, on every path that
takes a system prompt; nothing typed is lost.

Before: /c/new/ stored a 200,000-character prompt that the settings box then cut to
100,000 without a word; a lane's own prompt, an import and a setup link took any length.
(The socket takes no system prompt: it sends messages only.)"""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat import conversations
from chat.compare import lane_add
from chat.compare.lanes import conversation_from_setup
from chat.errors import ActionError
from chat.models import SYSTEM_PROMPT_MAX_CHARS, Conversation, EndpointProfile, Lane

pytestmark = pytest.mark.django_db(transaction=True)

LONG = "s" * 200_000
MESSAGE = "The system prompt is 200,000 characters; the limit is 100,000."


def shown(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def conversation(owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    return conversations.conversation_create(
        owner=owner, profile=profile, model="demo", system_prompt="Be brief."
    )


def test_the_new_page_refuses_a_long_prompt_and_keeps_everything_typed(owner_client, owner):
    profile = EndpointProfile.objects.get(owner=owner, is_demo=True)
    new = reverse("chat:conversation_new")
    fields = {"profile": profile.pk, "model": "demo", "content": "Hello there"}
    response = owner_client.post(new, {**fields, "system_prompt": LONG})
    assert response.status_code == 400
    page = shown(response)
    assert MESSAGE in page
    assert f"{LONG}</textarea>" in page and "Hello there" in page
    assert not Conversation.objects.filter(owner=owner).exists()
    # At the limit, it is taken whole.
    exact = "e" * SYSTEM_PROMPT_MAX_CHARS
    assert owner_client.post(new, {**fields, "system_prompt": exact}).status_code == 302
    assert Conversation.objects.get(owner=owner).system_prompt == exact


def test_the_settings_box_refuses_a_long_prompt_instead_of_cutting_it(owner_client, conversation):
    url = reverse("chat:conversation_settings", args=[conversation.pk])
    response = owner_client.post(url, {"system_prompt": LONG})
    page = shown(response)
    assert MESSAGE in page and f">{LONG}</textarea>" in page and "Saved" not in page
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be brief."
    exact = "e" * SYSTEM_PROMPT_MAX_CHARS
    assert "Saved" in shown(owner_client.post(url, {"system_prompt": exact}))
    conversation.refresh_from_db()
    assert conversation.system_prompt == exact


def test_a_lanes_own_prompt_has_the_same_limit(owner_client, conversation):
    lane_add(conversation=conversation)
    lane = Lane.objects.get(conversation=conversation, position=1)
    response = owner_client.post(
        reverse("chat:lane_settings", args=[conversation.pk, lane.pk]),
        {
            f"lane{lane.pk}-profile": lane.profile_id,
            f"lane{lane.pk}-model": "demo",
            "use_own_prompt": "1",
            "own_system_prompt": LONG,
        },
    )
    page = shown(response)
    assert MESSAGE in page and f">{LONG}</textarea>" in page
    lane.refresh_from_db()
    assert lane.system_prompt is None


def test_an_import_with_a_long_prompt_is_refused_saying_where(owner_client, owner):
    def post(payload):
        raw = json.dumps(payload).encode()
        upload = SimpleUploadedFile("import.json", raw, "application/json")
        return owner_client.post(reverse("chat:import"), {"file": upload})

    response = post([{"role": "system", "content": LONG}, {"role": "user", "content": "hi"}])
    assert response.status_code == 400
    assert f"[0].content: {MESSAGE}" in shown(response)
    native = {
        "format": "playground.conversations",
        "version": 1,
        "conversations": [
            {
                "title": "t",
                "system_prompt": LONG,
                "lanes": [{"position": 0, "system_prompt": LONG}],
                "messages": [],
            }
        ],
    }
    page = shown(post(native))
    assert f"conversations[0].system_prompt: {MESSAGE}" in page
    assert f"conversations[0].lanes[0].system_prompt: {MESSAGE}" in page
    assert not Conversation.objects.filter(owner=owner).exists()


def test_a_setup_link_with_a_long_prompt_is_refused(owner):
    with pytest.raises(ActionError, match="Lane 1: The system prompt is 200,000 characters"):
        conversation_from_setup(owner=owner, setup=[{"model": "demo", "system_prompt": LONG}])
    assert not Conversation.objects.filter(owner=owner).exists()
