"""The browser's side of the conversation socket, for tests and the benchmark.

Needs the ``websockets`` package (the ``test`` extra).
"""

from __future__ import annotations

import html
import json
import re
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

# One delta (append) or snapshot (replace) of a streaming message's text or reasoning.
DELTA = re.compile(
    r'<span id="([tr])-(\d+)" hx-swap-oob="(beforeend|innerHTML)">(.*?)</span>', re.S
)
FINAL_HEAD = 300


def session_key_for(user: Any) -> str:
    """A logged-in session for ``user``, saved in the database; returns its key (the
    value of the session cookie)."""
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


def ws_url(base: str, conversation_id: Any) -> str:
    return base.replace("http", "ws", 1) + f"/ws/c/{conversation_id}/"


async def ws_connect(base: str, conversation_id: Any, session_key: str) -> Any:
    """Open the conversation's socket as the page does: the session cookie and an
    Origin header matching the host."""
    from websockets.asyncio.client import connect

    return await connect(
        ws_url(base, conversation_id),
        origin=base,
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"},
        compression=None,  # the bytes counted are the bytes sent
        max_size=None,
        open_timeout=30,
        ping_interval=None,
    )


def send_frame(content: str) -> str:
    return json.dumps({"action": "send", "content": content})


STOP_FRAME = json.dumps({"action": "stop"})


def fake_prompt(text: str, **script: Any) -> str:
    """A user message scripting the fake endpoint (``@fake {...}``)."""
    return f"{text}\n@fake {json.dumps(script)}"


def is_final(frame: str) -> bool:
    """The answer's final render (markdown, metrics), which ends its stream."""
    head = frame[:FINAL_HEAD]
    return (
        frame.startswith("<article")
        and 'data-role="assistant"' in head
        and 'hx-swap-oob="outerHTML"' in head
    )


def final_status(frame: str) -> str | None:
    match = re.search(r'data-status="(\w+)"', frame[:FINAL_HEAD])
    return match.group(1) if match else None


def streamed_text(frames: list[str], field: str = "t") -> str:
    """The text a page shows after applying ``frames``' deltas and snapshots."""
    text = ""
    for frame in frames:
        for kind, _, mode, body in DELTA.findall(frame):
            if kind != field:
                continue
            body = html.unescape(body)
            text = body if mode == "innerHTML" else text + body
    return text
