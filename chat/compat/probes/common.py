"""What the probes share: prompts, limits, the tools and image they send, and the
shape of a successful outcome."""

from __future__ import annotations

import struct
import zlib
from base64 import b64encode
from typing import Any

from ..base import (
    Outcome,
    Reply,
    short,
)

JSON_LIMIT = 48  # room for a small JSON object
TOOL_LIMIT = 64  # room for one or two tool calls
BAD_MODEL = "playground-compat-probe-no-such-model"
CUT_BY_LIMIT = ", cut by the token limit: can't tell"
AUTO_TEXT = "Answered in text, which tool_choice auto allows: can't tell (see the required row)"

CHAT_PROMPT = "Reply with the single word: OK"
COUNT_PROMPT = "Count from 1 to 100, separated by spaces."
STOP_PROMPT = "Continue this list: 1, 2, 3, 4, 5"
SEED_PROMPT = "Write one short sentence about the sea."
TOOL_PROMPT = "Use the get_weather tool to get the weather in Paris."
PARALLEL_PROMPT = "Use both tools at once: get_weather for Paris and get_time for Tokyo."
ROLE_PROMPT = "You are terse. Answer in one word."


def _tool(name: str, description: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = _tool("get_weather", "The current weather in a city")
CLOCK = _tool("get_time", "The local time in a city")


def _png_1x1() -> bytes:
    """A valid 1x1 red PNG."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG_DATA_URL = "data:image/png;base64," + b64encode(_png_1x1()).decode()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ok(status: str, summary: str, reply: Reply, snippet: Any = None, **facts: Any) -> Outcome:
    shown = short(reply.text if snippet is None else snippet)
    return Outcome(status, summary, 200, None, shown, reply.sent, facts)
