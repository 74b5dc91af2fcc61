"""Every form that arrives over the socket can be submitted (issue 12, defect 2).

Fragments sent over the socket are rendered without a request, so `{% csrf_token %}` renders
nothing in them. A form there must be one that needs no token in its body: sent over the
socket (ws-send) or posted by htmx, whose requests carry the token from <body hx-headers>.
A plain POST form would fail with "CSRF verification failed", as the blind vote form did."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_compare_blind import blind_comparison, turn_frames
from tests.integration.test_consumer import connect, make_conversation, send, until_done

pytestmark = pytest.mark.django_db(transaction=True)

FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S)
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def unsubmittable(frames: list[str]) -> list[str]:
    bad = []
    for frame in frames:
        for form in FORM.findall(frame):
            opening = form.split(">", 1)[0]
            if "ws-send" in opening or "hx-post" in opening:
                continue
            if 'method="post"' not in opening.lower() or TOKEN.search(form):
                continue
            bad.append(opening)
    return bad


async def test_the_live_vote_form_of_a_blind_comparison_can_be_posted(owner):
    conversation = await blind_comparison(owner)
    frames = await turn_frames(owner, conversation, 'Which?\n@fake {"tokens": 5}', answers=3)
    assert any("summary-1" in f and "<form" in f for f in frames)  # the vote form came live
    assert unsubmittable(frames) == []


async def test_the_live_tool_results_form_can_be_sent(owner):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    await send(comm, "Weather?\n@fake " + json.dumps({"tool_calls": [call]}))
    frames = await until_done(comm, timeout=20)
    await comm.disconnect()
    assert any("<form" in f and "tool_results" in f for f in frames)
    assert unsubmittable(frames) == []


def test_the_check_catches_a_plain_post_form_without_its_token():
    """The shape the vote form had before the fix is reported; its fixed shapes are not."""
    before = '<div><form method="post" action="/c/x/vote/"><button>A</button></form></div>'
    assert unsubmittable([before]) == ['<form method="post" action="/c/x/vote/"']
    with_token = before.replace(
        "<button>", '<input type="hidden" name="csrfmiddlewaretoken" value="abc"><button>'
    )
    htmx = before.replace('method="post"', 'method="post" hx-post="/c/x/vote/"')
    assert unsubmittable([with_token, htmx]) == []
