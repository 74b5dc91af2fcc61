"""The websocket consumer, end to end in-process: socket -> turns -> run -> fake
endpoint (served in-process) -> channel layer -> socket."""

from __future__ import annotations

import asyncio
import html
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat import conversations, runs
from chat.models import Conversation, EndpointProfile, Message
from chat.sockets.routing import websocket_urlpatterns
from playground.asgi import application
from tests.bench.wire import DELTA, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


@database_sync_to_async
def make_conversation(user, model="demo") -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    return conversations.conversation_create(owner=user, profile=profile, model=model)


async def connect(user, conversation) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(app, f"/ws/c/{conversation.pk}/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


async def send(comm, text: str) -> None:
    await comm.send_to(text_data=json.dumps({"action": "send", "content": text, "HEADERS": {}}))


async def until_done(comm, timeout: float = 60) -> list[str]:
    """Frames up to and including the final render of an answer."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_from(timeout=timeout)
            frames.append(frame)
            if 'hx-swap-oob="outerHTML"' in frame and 'data-role="assistant"' in frame:
                return frames


@database_sync_to_async
def messages_of(conversation) -> list[Message]:
    return list(conversation.messages.order_by("turn", "id"))


async def turn_of(owner, text: str) -> tuple[Conversation, list[str]]:
    """Send `text` in a new conversation: it, and the frames up to its answer's end."""
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, text)
    frames = await until_done(comm)
    await comm.disconnect()
    return conversation, frames


async def answer_to(owner, text: str) -> Message:
    """Send `text` in a new conversation; its answer, once done."""
    conversation, _ = await turn_of(owner, text)
    _, answer = await messages_of(conversation)
    return answer


async def test_it_rejects_anonymous_and_foreign_conversations(owner, outsider):
    from django.contrib.auth.models import AnonymousUser

    conversation = await make_conversation(owner)
    for user, code in ((AnonymousUser(), 4401), (outsider, 4404)):
        comm = WebsocketCommunicator(app, f"/ws/c/{conversation.pk}/")
        comm.scope["user"] = user
        connected, close_code = await comm.connect()
        assert not connected and close_code == code
        await comm.disconnect()
    comm = WebsocketCommunicator(app, "/ws/c/not-a-uuid/")
    comm.scope["user"] = owner
    connected, close_code = await comm.connect()
    assert not connected and close_code == 4404


async def test_a_foreign_origin_is_refused(owner):
    conversation = await make_conversation(owner)
    comm = WebsocketCommunicator(
        application,
        f"/ws/c/{conversation.pk}/",
        headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


async def test_a_turn_streams_only_new_text_and_saves_everything(owner):
    conversation, frames = await turn_of(
        owner, 'Tell me about WAL\n@fake {"tokens": 120, "tps": 400}'
    )

    user_msg, answer = await messages_of(conversation)
    assert user_msg.role == "user" and user_msg.content.startswith("Tell me about WAL")
    assert answer.status == "complete" and answer.finish_reason == "stop"
    assert answer.content and streamed_text(frames) == answer.content
    assert answer.usage["completion_tokens"] == 120
    assert answer.metrics["ttft_ms"] >= 0 and answer.metrics["tokens_per_s"] > 0
    assert answer.metrics["tokens_estimated"] is False
    assert answer.request_body["messages"][-1]["role"] == "user"
    assert "<p>" in answer.rendered
    # Frames carry only new text: the socket bytes grow linearly with the answer.
    deltas = [f for f in frames if DELTA.search(f) and "outerHTML" not in f]
    delta_bytes = sum(len(f.encode()) for f in deltas)
    assert delta_bytes <= 1.3 * len(answer.content.encode()) + 60 * len(deltas)
    # ...and are coalesced: far fewer frames than the 120 upstream deltas.
    assert len(deltas) < 60


async def test_group_events_do_not_wait_for_the_database_thread(owner, monkeypatch):
    """Channels closes old connections (a hop into the one database thread) before each
    handler; the group events' handlers never touch the database, so they skip it."""
    import channels.consumer

    from chat.sockets.consumers import DB_FREE_EVENTS, ConversationConsumer

    assert all(callable(getattr(ConversationConsumer, n, None)) for n in DB_FREE_EVENTS.values())
    hops: list[int] = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        hops.append(1)
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    before = len(hops)
    await send(comm, 'Count my hops\n@fake {"tokens": 40, "tps": 400}')
    frames = await until_done(comm)
    await comm.disconnect()
    assert len([f for f in frames if DELTA.search(f)]) > 1
    # The turn's frame from the socket only: turn.started, deltas and run.done, none.
    assert len(hops) - before <= 2  # websocket.receive, and the disconnect


async def test_the_composer_clears_only_once_the_turn_is_saved(owner):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, 'Slow please\n@fake {"ttft_ms": 1500, "tokens": 5}')
    first = await comm.receive_from(timeout=60)  # the cleared composer
    assert 'id="composer"' in first
    user_msg, answer = await messages_of(conversation)
    assert user_msg.content.startswith("Slow please") and answer.status == "streaming"
    assert answer.request_body is not None  # the exact body is kept before sending
    await until_done(comm)
    await comm.disconnect()


async def test_stop_keeps_the_partial_text_and_marks_it_stopped(owner):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, 'Long one\n@fake {"tokens": 2000, "tps": 50}')
    frames = []
    while not streamed_text(frames):
        frames.append(await comm.receive_from(timeout=60))
    await comm.send_to(text_data=json.dumps({"action": "stop"}))
    frames += await until_done(comm)
    await comm.disconnect()
    _, answer = await messages_of(conversation)
    assert answer.status == "stopped"
    assert answer.content and streamed_text(frames) == answer.content
    assert len(answer.content.split()) < 1000
    assert 'data-status="stopped"' in frames[-1]


@pytest.mark.parametrize("remote", [False, True], ids=["same-process", "via-layer"])
async def test_a_reconnecting_tab_gets_a_snapshot_then_only_new_text(owner, monkeypatch, remote):
    conversation = await make_conversation(owner)
    first = await connect(owner, conversation)
    await send(first, 'Snapshot\n@fake {"tokens": 60, "tps": 60}')
    seen = []
    while len(streamed_text(seen)) < 40:
        seen.append(await first.receive_from(timeout=60))
    await first.disconnect()  # the tab closes; the run goes on
    if remote:
        # As if the new socket landed on another worker: ask the run over the layer.
        monkeypatch.setattr(runs, "local_run", lambda message_id: None)
    second = await connect(owner, conversation)
    frames = await until_done(second)
    await second.disconnect()
    snapshot = DELTA.search(frames[0])
    assert snapshot and snapshot.group(3) == "innerHTML"
    assert len(html.unescape(snapshot.group(4))) >= 40
    _, answer = await messages_of(conversation)
    assert answer.status == "complete"
    # Snapshot + appended deltas give the saved text exactly: nothing twice, nothing lost.
    assert streamed_text(frames) == answer.content


async def test_a_second_tab_receives_the_same_turn(owner):
    conversation = await make_conversation(owner)
    sender, watcher = await connect(owner, conversation), await connect(owner, conversation)
    await send(sender, 'Both tabs\n@fake {"tokens": 30, "tps": 300}')
    sent_frames = await until_done(sender)
    watched = await until_done(watcher)
    await sender.disconnect()
    await watcher.disconnect()
    assert any('data-role="user"' in f for f in watched)
    assert streamed_text(watched) == streamed_text(sent_frames) != ""
    assert not any('id="composer"' in f for f in watched)  # only the sender's form resets


async def test_an_upstream_error_shows_status_and_provider_text(owner):
    conversation, frames = await turn_of(
        owner, '@fake {"status": 503, "message": "Overloaded, try later"}\nHello'
    )
    assert 'data-status="error"' in frames[-1]
    assert "HTTP 503" in frames[-1] and "Overloaded, try later" in frames[-1]
    _, answer = await messages_of(conversation)
    assert answer.error["status"] == 503


async def test_an_error_mid_stream_keeps_the_partial_text(owner):
    answer = await answer_to(owner, '@fake {"tokens": 50, "tps": 0, "error_after": 10}\nHello')
    assert answer.status == "error" and answer.content
    assert answer.error["status"] is None and answer.error["message"]


async def test_a_cut_stream_is_marked_and_keeps_its_text(owner):
    answer = await answer_to(owner, '@fake {"tokens": 50, "tps": 0, "cut_after": 10}\nHello')
    assert answer.status == "error" and answer.content
    assert "ended before" in answer.error["message"]


async def test_a_refused_send_keeps_the_text_in_the_composer(owner):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, 'First\n@fake {"tokens": 400, "tps": 40}')
    await comm.receive_from(timeout=60)
    await send(comm, "Second <b>draft</b>")
    while True:
        frame = await comm.receive_from(timeout=60)
        if 'id="composer"' in frame:
            break
    assert "still streaming" in frame
    assert "Second &lt;b&gt;draft&lt;/b&gt;" in frame
    await comm.send_to(text_data=json.dumps({"action": "stop"}))
    await until_done(comm)
    await comm.disconnect()


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ("not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({"action": "launch-missiles"}), "Unknown action"),
        (json.dumps({"action": "send", "content": 42}), "must be text"),
        (json.dumps({"action": "stop", "message": "abc"}), "message id"),
    ],
)
async def test_bad_frames_get_a_clear_message(owner, payload, text):
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=payload)
    frame = await comm.receive_from(timeout=60)
    assert 'class="toast"' in frame and text in frame
    await comm.disconnect()
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_stop_reaches_a_run_through_the_channel_layer(owner, monkeypatch):
    """Stop from a socket on another worker: the run is found by its group, not by a
    local lookup."""
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, 'Far away\n@fake {"tokens": 2000, "tps": 50}')
    frames = []
    while not streamed_text(frames):
        frames.append(await comm.receive_from(timeout=60))
    (_, answer) = await messages_of(conversation)
    run = runs.local_run(answer.pk)
    assert run is not None
    monkeypatch.setattr(runs, "local_run", lambda message_id: None)  # as if remote
    await runs.stop(answer.pk)
    await asyncio.wait_for(run.task, 60)
    await until_done(comm)
    await comm.disconnect()
    (_, answer) = await messages_of(conversation)
    assert answer.status == "stopped"


async def test_an_oversized_frame_is_refused_with_a_clear_message(owner, monkeypatch):
    from chat.sockets import consumers

    monkeypatch.setattr(consumers, "MAX_FRAME_BYTES", 1_000)
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, "x" * 2_000)
    frame = await comm.receive_from(timeout=60)
    assert 'class="toast"' in frame and "too large" in frame
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_a_message_past_the_character_cap_is_refused_and_kept(owner, settings):
    settings.MAX_MESSAGE_CHARS = 50
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, "y" * 51)
    frames: list[str] = []
    async with asyncio.timeout(60):  # a safety net: waits for the refusal, not a quiet spell
        while not all(x in "".join(frames) for x in ("the limit is 50", "hx-preserve")):
            frames.append(await comm.receive_from(timeout=60))
    while not await comm.receive_nothing(timeout=0.5):  # and whatever else followed it
        frames.append(await comm.receive_from())
    joined = "".join(frames)
    assert "the limit is 50" in joined
    # Nothing typed is lost: the page keeps its own textarea (hx-preserve); the refused
    # text is not sent back (a frame may be ~28 MB).
    assert "hx-preserve" in joined and "y" * 51 not in joined
    await comm.disconnect()
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_a_page_showing_a_finished_answer_as_streaming_gets_its_final_form(owner):
    """The page was rendered while the answer streamed, and the answer finished before
    the socket opened: the page's sync brings the final render, once."""
    conversation = await make_conversation(owner)
    comm = await connect(owner, conversation)
    await send(comm, 'Fast\n@fake {"tokens": 5, "tps": 0}')
    await until_done(comm)
    await comm.disconnect()
    answer = await database_sync_to_async(lambda: conversation.messages.get(role="assistant"))()
    assert answer.status == "complete"

    late = await connect(owner, conversation)
    assert await late.receive_nothing(timeout=0.3)  # nothing streams: no snapshot
    await late.send_to(text_data=json.dumps({"action": "sync", "messages": [answer.pk, 10**9]}))
    frame = await late.receive_from(timeout=60)
    assert f'id="m-{answer.pk}"' in frame and 'hx-swap-oob="outerHTML"' in frame
    assert 'data-status="complete"' in frame and answer.content[:20] in html.unescape(frame)
    assert await late.receive_nothing(timeout=0.3)  # the unknown id gets nothing
    await late.send_to(text_data=json.dumps({"action": "sync", "messages": "nonsense"}))
    assert "malformed" in await late.receive_from(timeout=60)
    await late.disconnect()


async def test_sqlite_keeps_the_database_threads_connection_and_closes_a_requests():
    """CONN_MAX_AGE None on SQLite: the one thread that serves sockets and runs keeps its
    connection between calls; an HTTP request's own thread closes its connection."""
    from asgiref.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application
    from django.core.signals import request_finished
    from django.db import connection, connections

    if connection.vendor != "sqlite":
        pytest.skip("persistent connections are for SQLite (PostgreSQL uses its pool)")

    @database_sync_to_async
    def connection_in_use() -> object:
        Message.objects.exists()
        return connection.connection

    assert await connection_in_use() is await connection_in_use()

    open_after_request: list[bool] = []

    def after(**kwargs: object) -> None:  # connected after chat's own receiver
        open_after_request.extend(
            c.connection is not None for c in connections.all(initialized_only=True)
        )

    request_finished.connect(after)
    try:
        scope = {
            "type": "http", "method": "GET", "path": "/healthz", "query_string": b"",
            "headers": [(b"host", b"localhost")], "http_version": "1.1", "scheme": "http",
            "server": ("localhost", 80), "client": ("127.0.0.1", 1),
        }  # fmt: skip
        comm = ApplicationCommunicator(get_asgi_application(), scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(5)
        assert start["status"] == 200
        while (await comm.receive_output(5)).get("more_body"):
            pass
        await comm.wait(5)
    finally:
        request_finished.disconnect(after)
    assert open_after_request and not any(open_after_request)


async def test_closing_request_connections_from_an_event_loop_is_a_no_op(owner, monkeypatch):
    """request_finished also fires in the event loop's thread (an async streaming response
    closing, as under the test client): closing a connection there would raise."""
    from django.db import connection

    from chat.apps import close_request_connections

    if connection.vendor != "sqlite":
        pytest.skip("persistent connections are for SQLite (PostgreSQL uses its pool)")
    await database_sync_to_async(Message.objects.exists)()
    # This (event loop) thread's own connection, as a test's thread may have one.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    connection.ensure_connection()
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")
    close_request_connections()
    assert connection.connection is not None
