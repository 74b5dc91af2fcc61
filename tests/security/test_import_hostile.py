"""Crafted import files: refused with the field named, never HTML on the page, never a 500.

An import file is as untrusted as model output: its choices, usage, metrics, votes and
logprobs reach templates and views that assume the shapes the app itself writes."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chat import exports
from chat.models import Conversation
from tests.integration.history_world import chat_with

pytestmark = pytest.mark.django_db

HTMX_LOAD = '<div hx-get="/endpoints/" hx-trigger="load">'


def _document(owner, **answer_fields):
    """A native export of one conversation (a question, an answer) with the answer's
    fields replaced by `answer_fields`."""
    document = exports.conversation_export(conversation=chat_with(owner, "T", "q", "a"))
    conversation = document["conversations"][0]
    conversation["messages"][1].update(answer_fields)
    Conversation.objects.filter(owner=owner).delete()
    return document


def _import(client, document):
    raw = json.dumps(document).encode()
    upload = SimpleUploadedFile("import.json", raw, "application/json")
    return client.post(reverse("chat:import"), {"file": upload})


def _text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


@pytest.mark.parametrize(
    ("choices", "where"),
    [
        # The audit's file: a second choice whose content is not text, with its own html.
        (
            [{"index": 0, "content": "a"}, {"index": 2, "content": 5, "html": HTMX_LOAD}],
            "messages[1].choices[1].content",
        ),
        ([{"index": 0, "content": [HTMX_LOAD, HTMX_LOAD]}], "messages[1].choices[0].content"),
        ([{"index": 0, "content": None, "html": HTMX_LOAD}], "messages[1].choices[0].content"),
        ([{"index": 0}], "messages[1].choices[0]"),  # no content: broke the page
        ([{"index": "0", "content": "a"}], "messages[1].choices[0].index"),
        ([{"index": 0, "content": "a", "onclick": "x"}], "messages[1].choices[0]"),
        ([{"index": 0, "content": "a", "logprobs": [5]}], "messages[1].choices[0].logprobs[0]"),
    ],
)
def test_a_choice_of_the_wrong_shape_is_refused_by_name(owner_client, owner, choices, where):
    response = _import(owner_client, _document(owner, choices=choices, chosen=0))
    assert response.status_code == 400
    assert f"conversations[0].{where}" in _text(response)
    assert not Conversation.objects.filter(owner=owner).exists()


def test_html_in_a_choice_is_never_taken_from_the_file(owner_client, owner):
    choices = [
        {"index": 0, "content": "first"},
        {"index": 1, "content": "second *ok*", "html": HTMX_LOAD},
    ]
    response = _import(owner_client, _document(owner, choices=choices, chosen=0))
    assert response.status_code == 302
    conversation = Conversation.objects.get(owner=owner)
    page = owner_client.get(reverse("chat:conversation", args=[conversation.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert HTMX_LOAD not in html and 'hx-trigger="load"' not in html
    assert "<p>second <em>ok</em></p>" in html


def test_a_choice_without_html_shows_its_text_escaped(owner_client, owner):
    """The template's fallback when a choice has no rendered HTML: the text, escaped."""
    conversation = chat_with(owner, "T", "q", "a")
    answer = conversation.messages.get(role="assistant")
    answer.choices = [{"index": 0, "content": "a"}, {"index": 1, "content": HTMX_LOAD}]
    answer.chosen = 0
    answer.save()
    html = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert HTMX_LOAD not in html
    assert "&lt;div hx-get=" in html


def test_choices_imported_before_the_fix_are_rendered_again(owner_client, owner):
    """Migration 0008: a row an earlier import stored with the file's HTML loses it."""
    from importlib import import_module

    from django.apps import apps

    conversation = chat_with(owner, "T", "q", "a")
    answer = conversation.messages.get(role="assistant")
    answer.choices = [
        {"index": 0, "content": "a", "html": "<p>a</p>"},
        {"index": 1, "content": [HTMX_LOAD], "html": HTMX_LOAD},
        {"index": 2, "html": HTMX_LOAD},
    ]
    answer.save()
    migration = import_module("chat.migrations.0008_choices_rendered_again")
    migration.choices_rendered_again(apps, None)
    answer.refresh_from_db()
    assert [c["content"] for c in answer.choices] == ["a", json.dumps([HTMX_LOAD]), ""]
    assert all(HTMX_LOAD not in c["html"] for c in answer.choices)
    html = owner_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert HTMX_LOAD not in html


def _import_raw(client, raw: bytes):
    upload = SimpleUploadedFile("import.json", raw, "application/json")
    return client.post(reverse("chat:import"), {"file": upload})


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 50_000,  # RecursionError in the JSON reader: was a 500
        b"[" * 900 + b"]" * 900,  # read, but deeper than the checks can recurse
        f'{{"format": "{exports.FORMAT}", "conversations": {"[" * 70}{"]" * 70}}}'.encode(),
    ],
    ids=["unclosed", "closed", "inside-an-export"],
)
def test_a_deeply_nested_file_is_refused_with_a_message(owner_client, owner, raw):
    response = _import_raw(owner_client, raw)
    assert response.status_code == 400
    assert "nest more than 64 deep" in _text(response)
    assert not Conversation.objects.filter(owner=owner).exists()


@pytest.mark.parametrize(
    ("number", "named"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "1e400"),
        ("9" * 5000, "9" * 39),
    ],
)
@pytest.mark.parametrize("field", ["metrics", "logprobs"])
def test_nan_and_infinity_are_refused_when_the_file_is_read(
    owner_client, owner, number, named, field
):
    """Python's json reads them and they passed the number checks; PostgreSQL's jsonb
    refuses them (a 500 when the import was written)."""
    if field == "metrics":
        fields = {"metrics": {"ttft_ms": "__N__"}}
    else:
        fields = {"logprobs": [{"token": "a", "logprob": "__N__", "top_logprobs": []}]}
    raw = json.dumps(_document(owner, **fields)).replace('"__N__"', number).encode()
    response = _import_raw(owner_client, raw)
    assert response.status_code == 400
    text = _text(response)
    assert "Not valid JSON" in text and named in text
    assert not Conversation.objects.filter(owner=owner).exists()
