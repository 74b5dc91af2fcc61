"""What one page shows of the answers streaming, so that each run's frames reach it
exactly once: the characters of each (message, field) it has, the markdown blocks it
shows rendered, and the frames held while it waits for a run's snapshot.

Pure bookkeeping (no socket, no event loop): the consumer asks it which frames to send.
Each delta carries its offset, so text is never duplicated or lost, whichever worker
owns the run and whenever the page (re)connected.
"""

from __future__ import annotations

from typing import Any, Final

from chat import frames

# A delta that starts past what the page has: it missed something; it needs a snapshot.
GAP: Final = "gap"


class Shown:
    def __init__(self) -> None:
        # Characters of each (message, field) this page already shows.
        self.sent: dict[tuple[int, str], int] = {}
        # Characters of each markdown field it shows as rendered blocks.
        self.committed: dict[tuple[int, str], int] = {}
        # Frames that arrive while it waits for a remote run's snapshot.
        self.waiting: dict[int, list[dict[str, Any]]] = {}

    # --- waiting for a snapshot -----------------------------------------------------------
    def wait(self, message_id: int) -> bool:
        """Hold ``message_id``'s frames until its snapshot; False if already waiting."""
        if message_id in self.waiting:
            return False
        self.waiting[message_id] = []
        return True

    def is_waiting(self, message_id: int) -> bool:
        return message_id in self.waiting

    def hold(self, event: dict[str, Any]) -> bool:
        """Keep a run's frame for later if its snapshot is awaited."""
        held = self.waiting.get(event["message_id"])
        if held is None:
            return False
        held.append(event)
        return True

    def release(self, message_id: int) -> list[dict[str, Any]] | None:
        """Stop waiting: the frames held meanwhile (None: it was not waiting)."""
        return self.waiting.pop(message_id, None)

    def done(self, message_id: int) -> None:
        """The answer ended: its final render replaces everything shown of it."""
        self.waiting.pop(message_id, None)
        for table in (self.sent, self.committed):
            for key in [k for k in table if k[0] == message_id]:
                del table[key]

    # --- frames ---------------------------------------------------------------------------
    def toolcall(self, event: dict[str, Any]) -> str | None:
        """A new tool call's element, unless the page has it."""
        key = (event["message_id"], f"call{event['slot']}")
        if key in self.sent:
            return None
        self.sent[key] = 1
        return frames.tool_calls(event["message_id"], [event])

    def delta(self, event: dict[str, Any]) -> str | None:
        """The frame that brings the page up to date with ``event`` (None: it has it
        all), or GAP."""
        message_id, field = event["message_id"], event["field"]
        key = (message_id, field)
        # A run this page has not seen start (e.g. sent from another tab): from 0.
        have = self.sent.get(key, 0)
        offset, text = event["offset"], event["text"]
        if offset > have:
            return GAP
        text = text[have - offset :]
        block = event.get("block")
        if block is not None:
            done = self.committed.get(key, 0)
            if block["end"] <= done:
                block = None  # this page has these blocks already (from a snapshot)
            elif block["start"] != done:
                return GAP  # it missed some
            else:
                self.committed[key] = block["end"]
        if text:
            self.sent[key] = have + len(text)
        if block is not None:
            return frames.block(message_id, field, text, block)
        return frames.delta(message_id, field, text) if text else None

    def snapshot(self, message_id: int, snapshot: dict[str, Any]) -> list[str]:
        """The frames that show a run's snapshot whole (what the page had is replaced)."""
        shown = []
        calls = snapshot.get("calls") or []
        for call in calls:
            self.sent[(message_id, f"call{call['slot']}")] = 1
        if calls:
            shown.append(frames.tool_calls(message_id, calls, replace=True))
        blocks = snapshot.get("blocks") or {}
        markdown = []  # each a message of its own: the page applies it whole (app.js)
        for field, text in snapshot["fields"].items():
            self.sent[(message_id, field)] = len(text)
            if field in blocks:
                self.committed[(message_id, field)] = blocks[field]["end"]
                markdown.append(
                    frames.block(message_id, field, text, {**blocks[field], "replace": True})
                )
            else:
                shown.append(frames.delta(message_id, field, text, replace=True))
        return [*markdown, "".join(shown)] if shown else markdown
