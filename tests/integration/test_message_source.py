"""The Copy button's source: a message's own text, to its owner only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.integration.test_edit_branch import chat_with_turns

pytestmark = pytest.mark.django_db(transaction=True)


def source_url(message) -> str:
    return reverse("chat:message_source", args=[message.conversation_id, message.pk])


def test_it_returns_the_markdown_source_of_questions_and_answers(owner, owner_client):
    conversation = chat_with_turns(owner, 2)
    question, answer = conversation.messages.filter(turn=2).order_by("id")
    answer.content = "**bold** and `<script>`"
    answer.save(update_fields=["content"])
    for message, text in ((question, "Question 2"), (answer, "**bold** and `<script>`")):
        response = owner_client.get(source_url(message))
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content.decode() == text


def test_it_is_a_404_for_someone_else_and_for_another_conversation(owner, outsider, client):
    conversation = chat_with_turns(owner, 1)
    other = chat_with_turns(owner, 1)
    answer = conversation.messages.get(role="assistant")
    client.force_login(outsider)
    assert client.get(source_url(answer)).status_code == 404
    client.force_login(owner)
    wrong = reverse("chat:message_source", args=[other.pk, answer.pk])
    assert client.get(wrong).status_code == 404
