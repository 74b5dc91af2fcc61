"""What the page sends over the socket, checked: the whole numbers a frame carries
(ids, turns, lanes, repeats) and a send frame's parameters, tools and images."""

from __future__ import annotations

import re
from typing import Any

from chat import services
from chat.models import Conversation, Message
from chat.params import check_params
from chat.tools import tools_from_form


class BadFrame(ValueError):
    """A frame field the page would never send; its message says which, for a toast."""


_WHOLE = re.compile(r"-?[0-9]{1,19}")
BIG_ID = 2**63 - 1  # BigAutoField
BIG_TURN = 2**31 - 1  # PositiveIntegerField


def whole(value: Any, *, low: int, high: int, problem: str, blank: int | None = None) -> Any:
    """A whole number as htmx sends it (a string) or as JSON does (an int), within
    [low, high]; None or "" gives `blank`. Booleans, floats (1e400 is inf), huge numbers
    and anything else raise BadFrame(problem): nothing reaches int() or the database
    that could overflow."""
    if value is None or value == "":
        return blank
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadFrame(problem)
    return value


def repeat_count(value: Any) -> int:
    return whole(
        value, low=1, high=MAX_REPEAT, blank=1,
        problem=f"Repeat must be a whole number from 1 to {MAX_REPEAT}.",
    )  # fmt: skip


def strings(value: Any) -> list[str]:
    """A form value as htmx sends it: absent, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    raise services.ActionError("Malformed image field.")


MAX_REPEAT = 10
# A page shows at most 6 lanes x 10 choices streaming; more ids than this is not a page.
MAX_SYNC_IDS = 64


def turn_send(
    conversation: Conversation, text: str, frame: dict[str, Any]
) -> tuple[Message, list[Message]]:
    """A send frame's turn: its parameters, tools and images are checked (and the
    parameters and tools saved) before the turn is."""
    raw_params = {k[6:]: v for k, v in frame.items() if k.startswith("param:")}
    cleaned = None
    if raw_params:
        # The panel's values travel with the message: what is shown is what is sent.
        cleaned, errors = check_params(raw_params, mode=conversation.mode)
        if errors:
            raise services.ActionError(
                "Fix the parameters first: " + "; ".join(str(e) for e in errors.values())
            )
    images = services.images_clean(
        data_urls=strings(frame.get("image_data")), urls=strings(frame.get("image_url"))
    )
    tools = None
    if "tool_choice" in frame:
        # The tools editor travels with the message too: invalid JSON is never sent.
        tools, tool_choice, tool_errors = tools_from_form(frame)
        if tool_errors:
            raise services.ActionError("Fix the tools first: " + "; ".join(tool_errors))
    if tools is not None:
        lane_id = str(frame.get("tools_lane") or "")
        own = next((lane for lane in conversation.lanes.all() if str(lane.pk) == lane_id), None)
        if lane_id and own is None:
            raise services.ActionError("That lane is not part of this conversation.")
        if own is not None:
            # The editor showed this lane's own tools: they are what it saves.
            own.tools = tools
            own.save(update_fields=["tools"])
        else:
            services.conversation_tools_save(
                conversation=conversation, tools=tools, tool_choice=tool_choice
            )
    if cleaned is not None:
        # The panel edits one lane, or every lane when "apply to all lanes" is on.
        lanes = list(conversation.lanes.all())
        panel_lane = str(frame.get("panel_lane") or "")
        if frame.get("sync_params") or len(lanes) == 1:
            targets = lanes
        else:
            targets = [lane for lane in lanes if str(lane.pk) == panel_lane] or lanes[:1]
        for lane in targets:
            services.lane_params_save(lane=lane, params=cleaned, mode=conversation.mode)
    return services.turn_send(conversation=conversation, content=text, images=images)
