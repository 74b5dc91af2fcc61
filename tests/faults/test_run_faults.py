"""The fault matrix through whole runs: websocket -> consumer -> run -> real socket (or
the fake) -> saved message and the final frame the browser gets."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from .catalogue import FAULTS, base_url
from .runner import (
    connect,
    last_answer,
    make_conversation,
    make_profile,
    send,
    streamed_text,
    until_done,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_a_run_saves_the_fault_with_its_details(fault, fault_server, owner):
    profile = await make_profile(
        owner, base_url=base_url(fault, fault_server), **fault.endpoint_kwargs()
    )
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, fault.prompt())
    frames = await until_done(comm)
    await comm.disconnect()

    answer = await last_answer(conversation)
    assert answer.status == "error"
    # The text that arrived before the failure is kept, and was shown as it came.
    assert answer.content == fault.partial
    assert streamed_text(frames) == fault.partial
    error = answer.error
    assert error["status"] == fault.status
    assert fault.message in error["message"]
    if fault.type is not None and not fault.silent_end:
        assert error["type"] == fault.type
    if fault.code is not None:
        assert error["code"] == fault.code
    if fault.body is not None:
        assert fault.body in (error["body"] or "")
    # The exact request is kept for the record.
    assert answer.request_body["messages"][-1]["content"] == fault.prompt()
    # The browser gets the error in the answer's place, escaped.
    final = frames[-1]
    assert 'data-status="error"' in final
    assert escape(error["message"]) in final
    if fault.status:
        assert f"HTTP {fault.status}" in final
