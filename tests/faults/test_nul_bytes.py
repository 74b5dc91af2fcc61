"""A NUL character (U+0000) from the user or from the endpoint.

Models do emit it now and then (``"\\u0000"`` in a JSON chunk), and a user can paste it.
SQLite stores it; PostgreSQL refuses it in text and jsonb columns. On every database the
turn is saved and ends normally, the NUL replaced by U+FFFD at the two boundaries (user
input in chat/turns.py, endpoint output in chat/upstream/client.py and chat/runs/).
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat import runs

from .rawserver import Conn, RawServer, Request, delta
from .runner import connect, last_answer, make_conversation, make_profile, send, until_done

pytestmark = pytest.mark.django_db(transaction=True)

KEPT = ("a\ufffdb", "ab", "a\x00b")


@database_sync_to_async
def streaming_id(conversation):
    message = conversation.messages.filter(role="assistant", status="streaming").first()
    return message.pk if message else None


@database_sync_to_async
def answered(conversation) -> bool:
    return conversation.messages.filter(role="assistant").exclude(status="streaming").exists()


async def finished_run(conversation) -> None:
    """Wait for the run to end, failing at once if it crashed."""
    async with asyncio.timeout(60):  # a safety net only: polls for the placeholder
        while (message_id := await streaming_id(conversation)) is None:
            if await answered(conversation):
                return  # the run already ended
            await asyncio.sleep(0.01)
    run = runs.local_run(message_id)
    if run is not None:
        await asyncio.wait_for(run.task, 60)


async def sent(owner, base_url: str, text: str):
    """``text`` sent to the endpoint at ``base_url``, its run ended, its answer's final
    frame received: the conversation."""
    profile = await make_profile(owner, base_url=base_url)
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, text)
    await finished_run(conversation)
    await until_done(comm, timeout=60)  # a safety net only
    await comm.disconnect()
    return conversation


async def test_a_nul_in_the_users_message(owner):
    text = 'a\x00b\n@fake {"reply": "fine", "tps": 0, "ttft_ms": 0}'
    conversation = await sent(owner, "http://fake.invalid/v1", text)
    user = await database_sync_to_async(conversation.messages.get)(role="user")
    assert user.content.split("\n")[0] in KEPT
    assert (await last_answer(conversation)).status == "complete"


async def test_a_nul_in_the_models_text(owner):
    text = '@fake {"reply": "a\\u0000b", "tps": 0, "ttft_ms": 0}'
    conversation = await sent(owner, "http://fake.invalid/v1", text)
    answer = await last_answer(conversation)
    assert answer.status == "complete" and answer.content in KEPT


async def test_a_nul_in_an_endpoint_error(owner):
    async def serve(req: Request, conn: Conn) -> bool:
        await conn.sse_head()
        await conn.sse(delta("a"))
        await conn.sse({"error": {"message": "bad\u0000thing", "type": "server_error"}})
        await conn.end()
        return True

    server = await RawServer(handler=serve).start()
    try:
        conversation = await sent(owner, server.url, "hello")
    finally:
        await server.close()
    answer = await last_answer(conversation)
    assert answer.status == "error" and answer.content == "a"
    assert answer.error["message"].startswith("bad") and answer.error["message"].endswith("thing")
