"""The websocket side of the authorization matrix: the socket of another user's
conversation is refused, every action a second user can send on their own socket leaves
the first user's objects alone, and a foreign Origin never gets a socket."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from chat import runs
from chat.models import Message
from playground.asgi import application
from tests.faults.runner import connect, is_final, send, streamed_text, until_done, ws_app

from .test_authz_matrix import WS_ACTIONS, Ref, consumer_actions, db_snapshot, make_side

pytestmark = pytest.mark.django_db(transaction=True)

# Sent along with every action: ids of the first user's objects in every field name an
# action might read, so no field can redirect an action to them.
EXTRA_REFS = {"conversation": "conversation", "profile": "profile", "preset": "preset"}


@database_sync_to_async
def sides():
    users = get_user_model()
    return make_side(users, "victim", "VICTIM"), make_side(users, "outsider", "OUTSIDER")


@database_sync_to_async
def streaming_message(conversation) -> Message:
    return conversation.messages.get(status="streaming")


@database_sync_to_async
def victim_rows(victim, skip_message_id):
    """The first user's rows, but for the message their own run is writing."""
    snapshot = db_snapshot()
    theirs = {r["id"] for r in snapshot["chat.Conversation"] if r["owner_id"] == victim.user.pk}
    lanes = {r["id"] for r in snapshot["chat.Lane"] if r["conversation_id"] in theirs}
    snapshot["chat.Message"] = [
        r
        for r in snapshot["chat.Message"]
        if (r["conversation_id"] in theirs or r["lane_id"] in lanes) and r["id"] != skip_message_id
    ]
    snapshot["chat.Conversation"] = [
        {k: v for k, v in r.items() if k != "updated_at"}
        for r in snapshot["chat.Conversation"]
        if r["id"] in theirs
    ]
    for label in ("chat.EndpointProfile", "chat.Preset"):
        snapshot[label] = [r for r in snapshot[label] if r["owner_id"] == victim.user.pk]
    snapshot["chat.Lane"] = [r for r in snapshot["chat.Lane"] if r["conversation_id"] in theirs]
    labels = ("chat.Message", "chat.Conversation", "chat.EndpointProfile", "chat.Preset")
    return {k: snapshot[k] for k in (*labels, "chat.Lane")}


async def drain(comm, seconds: float = 0.3) -> list[str]:
    """Frames until the socket is quiet (receive_from's timeout would kill the app)."""
    frames = []
    while not await comm.receive_nothing(timeout=seconds):
        frames.append(await comm.receive_from())
    return frames


async def test_another_users_socket_and_actions_reach_nothing(monkeypatch):
    assert set(WS_ACTIONS) >= consumer_actions()
    victim, outsider = await sides()

    # The socket of the victim's conversation is refused to the outsider.
    comm = WebsocketCommunicator(ws_app, f"/ws/c/{victim.conversation.pk}/")
    comm.scope["user"] = outsider.user
    connected, code = await comm.connect()
    assert not connected and code == 4404
    await comm.disconnect()

    # The victim has an answer streaming.
    vcomm = await connect(victim.user, victim.conversation)
    await send(vcomm, 'A long one\n@fake {"tokens": 3000, "tps": 60}')
    seen: list[str] = []
    while not streamed_text(seen):
        seen.append(await vcomm.receive_from(timeout=60))
    running = await streaming_message(victim.conversation)
    refs = {
        "message": victim.message.pk,
        "streaming_message": running.pk,
        "tool_answer": victim.tool_answer.pk,
        "conversation": str(victim.conversation.pk),
        "profile": str(victim.profile.pk),
        "preset": str(victim.preset.pk),
    }
    before = await victim_rows(victim, running.pk)

    # Every action, from the outsider's own socket, aimed at the victim's objects.
    ocomm = await connect(outsider.user, outsider.conversation)
    outsider_frames: list[str] = []
    for action, fields in WS_ACTIONS.items():
        frame = {"action": action}
        for key, value in {**EXTRA_REFS, **fields}.items():
            kind = value.kind if isinstance(value, Ref) else value
            frame[key] = refs.get(kind, value)
        await ocomm.send_to(text_data=json.dumps(frame))
        outsider_frames += await drain(ocomm)
    started = any('data-status="streaming"' in f for f in outsider_frames)
    if started and not any(is_final(f) for f in outsider_frames):
        outsider_frames += await until_done(ocomm)  # the outsider's own answer
    await ocomm.disconnect()

    run = runs.local_run(running.pk)
    assert run is not None and not run.stop_requested and not run.finished
    assert await victim_rows(victim, running.pk) == before
    assert not any("VICTIM" in f for f in outsider_frames)

    # The control: the victim's own Stop does stop it.
    await vcomm.send_to(text_data=json.dumps({"action": "stop", "message": running.pk}))
    await until_done(vcomm)
    await vcomm.disconnect()
    running = await database_sync_to_async(Message.objects.get)(pk=running.pk)
    assert running.status == "stopped"


@database_sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def try_socket(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect()
    await comm.disconnect()
    return connected, code


async def test_the_socket_checks_origin_and_session():
    victim, outsider = await sides()
    path = f"/ws/c/{victim.conversation.pk}/"
    cookie = await session_cookie(victim.user)
    host = (b"host", b"localhost")
    # The control: the page's own origin with the owner's session connects.
    assert (await try_socket(path, [host, (b"origin", b"http://localhost"), (b"cookie", cookie)]))[
        0
    ]
    for origin in (
        b"http://evil.example",
        b"https://localhost.evil.example",
        b"http://localhost.evil.example",
        b"http://evil.example:80",
        b"null",
        b"file://",
    ):
        connected, _ = await try_socket(path, [host, (b"origin", origin), (b"cookie", cookie)])
        assert not connected, origin
    connected, _ = await try_socket(path, [host, (b"cookie", cookie)])  # no Origin at all
    assert not connected
    # Right origin, but no session, or another user's session.
    connected, code = await try_socket(path, [host, (b"origin", b"http://localhost")])
    assert not connected and code == 4401
    other = await session_cookie(outsider.user)
    origin = (b"origin", b"http://localhost")
    connected, code = await try_socket(path, [host, origin, (b"cookie", other)])
    assert not connected and code == 4404
