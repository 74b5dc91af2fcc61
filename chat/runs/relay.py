"""An answer to the pages: coalesced deltas to the conversation's group, markdown
blocks committed as they complete, and a heartbeat save about once a second.

Traffic is kept linear in the answer's length: the first delta goes at once, then at
most one frame per RUN_FRAME_INTERVAL, and frames carry only new text, with its offset,
so every receiver can drop what it already has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from chat.mdstream import MarkdownStream
from chat.runs.answer import Answer, is_text_field


class Relay:
    """``wake`` after the answer grew; ``end`` once it is complete; ``run`` sends until
    then. ``save`` is the heartbeat (the partial text and a fresh timestamp)."""

    def __init__(
        self,
        answer: Answer,
        *,
        group: str,
        markdown: bool,
        save: Callable[[], Awaitable[None]],
        message_id: int = 0,
    ) -> None:
        self.answer = answer
        self.group = group
        self.message_id = message_id  # may come later (a request started before its save)
        self.markdown = markdown  # chat answers are shown as markdown while they stream
        self.save = save
        self.blocks: dict[str, MarkdownStream] = {}
        self.ended = False
        self.event = asyncio.Event()

    def wake(self) -> None:
        self.event.set()

    def end(self) -> None:
        self.ended = True
        self.event.set()

    def snapshot(self) -> dict[str, Any]:
        """Everything shown so far, for a page that (re)connects mid-answer."""
        fields = self.answer.texts()
        return {
            "type": "run.snapshot",
            "message_id": self.message_id,
            "calls": [self.answer.call_info(s) for s in range(len(self.answer.tools.calls))],
            "fields": fields,
            # Markdown fields: the blocks rendered so far (the rest of the text is the tail).
            "blocks": {
                name: md.snapshot(text)
                for name, text in fields.items()
                if (md := self._markdown(name)) is not None
            },
        }

    def _markdown(self, name: str) -> MarkdownStream | None:
        if not self.markdown or not is_text_field(name):
            return None
        md = self.blocks.get(name)
        if md is None:
            md = self.blocks[name] = MarkdownStream()
        return md

    async def _commit(self, name: str, chunk: str) -> dict[str, Any] | None:
        """Feed the field's new text to its markdown split: the blocks it completed."""
        md = self._markdown(name)
        pending = md.feed(chunk) if md is not None else None
        if pending is None:
            return None
        if not pending.cheap:
            # Highlighting code or a long block takes milliseconds: not on the event loop
            # (which may serve a snapshot meanwhile: the split itself moves on afterwards).
            await asyncio.to_thread(pending.prepare)
        return pending.render().event()

    async def run(self, layer: Any) -> None:
        """Relay until ``end``. One timer per frame (the coalescing sleep) and one per
        heartbeat: a quiet stream is woken for its heartbeat by a timer armed once per
        save, not by a timeout around every wait."""
        loop = asyncio.get_running_loop()
        last_save = loop.time()
        heartbeat = loop.call_at(last_save + settings.RUN_SAVE_INTERVAL, self.event.set)
        try:
            while True:
                await self.event.wait()
                self.event.clear()
                # Read `ended` before draining: if the answer ends while a send below is
                # awaited, its last deltas are flushed on the next pass, not lost.
                ended = self.ended
                if ended:
                    self.answer.finish()
                await self._send(layer)
                if ended:
                    return
                now = loop.time()
                if now - last_save >= settings.RUN_SAVE_INTERVAL:
                    last_save = now
                    await self.save()
                if heartbeat.when() <= loop.time():  # it went off: arm the next one
                    heartbeat = loop.call_at(last_save + settings.RUN_SAVE_INTERVAL, self.event.set)
                await asyncio.sleep(settings.RUN_FRAME_INTERVAL)
        finally:
            heartbeat.cancel()

    async def _send(self, layer: Any) -> None:
        answer = self.answer
        while answer.new_calls:
            # A call's element must reach the pages before its arguments do.
            slot = answer.new_calls.pop(0)
            await layer.group_send(
                self.group,
                {"type": "run.toolcall", "message_id": self.message_id, **answer.call_info(slot)},
            )
        for name, stream in list(answer.streams.items()):
            if stream.pending:
                offset, chunk = stream.take_pending()
                event = {
                    "type": "run.delta",
                    "message_id": self.message_id,
                    "field": name,
                    "offset": offset,
                    "text": chunk,
                }
                block = await self._commit(name, chunk)
                if block is not None:
                    event["block"] = block
                await layer.group_send(self.group, event)
