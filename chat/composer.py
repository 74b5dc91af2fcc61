"""What a send carries besides its text: the parameter panel's values (for its lane, or
every lane when "apply to all lanes" is on) and the tools editor's (for the shared
tools, or one lane's own). One meaning whichever way they arrive: the panel's and the
editor's autosaves (HTTP) and the composer's send (the socket) all save through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import Http404

from chat import owned
from chat.errors import ActionError
from chat.models import Conversation, Lane
from chat.params import BY_NAME, CHAT_API, check_params, params_for
from chat.tools import tools_from_form

NOT_A_LANE = "That lane is not part of this conversation."


def panel_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter panel's inputs in a form or a frame (`param:<name>`), by name, as
    typed: `check_params` cleans them."""
    return {k[6:]: v for k, v in data.items() if k.startswith("param:")}


def lane_named(conversation: Conversation, wanted: Any) -> Lane | None:
    """The conversation's lane a form names by id; None when it names none. A lane it
    names must be one of this conversation's: never a fallback to another."""
    try:
        return owned.lane_in(conversation, str(wanted or ""))
    except Http404:
        raise ActionError(NOT_A_LANE) from None


def lane_params_save(
    *, lane: Lane, params: dict[str, Any], mode: str | None = None, api: str | None = None
) -> None:
    """`params`: the values of the parameters a panel shows for `mode` on `api` (mode
    None: every parameter); a lane keeps its values of the others (the other mode's, or
    the chat-only ones while it speaks the Responses API), for when it switches back."""
    if mode is not None:
        shown = {p.name for p in params_for(mode, api or CHAT_API)}
        kept = {
            name: value
            for name, value in lane.params.items()
            if name in BY_NAME and name not in shown
        }
        params = {**kept, **params}
    if params != lane.params:
        lane.params = params
        lane.save(update_fields=["params"])


def params_save(*, lane: Lane, params: dict[str, Any], sync: bool) -> None:
    """The panel's values, to its lane, or to every lane when `sync` ("apply to all
    lanes") is on. Only the parameters the panel shows change: a lane keeps the others."""
    conversation = lane.conversation
    mode = conversation.mode
    api = lane.wire_api
    for target in conversation.lanes.all() if sync else [lane]:
        lane_params_save(lane=target, params=params, mode=mode, api=api)


def tools_save(
    *, conversation: Conversation, lane: Lane | None, tools: list[dict[str, Any]], choice: Any
) -> None:
    """The editor's tools, as the shared ones (lane None) or as `lane`'s own; the
    tool_choice shown with them is the conversation's either way."""
    if lane is None:
        if tools != conversation.tools or choice != conversation.tool_choice:
            conversation.tools = tools
            conversation.tool_choice = choice
            conversation.save(update_fields=["tools", "tool_choice", "updated_at"])
        return
    lane.tools = tools
    lane.save(update_fields=["tools"])
    if choice != conversation.tool_choice:
        conversation.tool_choice = choice
        conversation.save(update_fields=["tool_choice", "updated_at"])


def send_apply(conversation: Conversation, data: Mapping[str, Any]) -> None:
    """Save what a send carries (`data`: the composer's form, with the panel and the
    tools editor). Everything is checked before anything is saved: a refusal
    (ActionError) leaves the conversation as it was."""
    raw_params = panel_values(data)
    cleaned = None
    if raw_params:
        # The panel's values travel with the message: what is shown is what is sent.
        cleaned, errors = check_params(raw_params, mode=conversation.mode)
        if errors:
            raise ActionError(
                "Fix the parameters first: " + "; ".join(str(e) for e in errors.values())
            )
    panel_lane = lane_named(conversation, data.get("panel_lane"))
    tools = None
    if "tool_choice" in data:
        # The tools editor travels with the message too: invalid JSON is never sent.
        tools, choice, tool_errors = tools_from_form(data)
        if tool_errors:
            raise ActionError("Fix the tools first: " + "; ".join(tool_errors))
    tools_lane = lane_named(conversation, data.get("tools_lane"))
    if tools is not None:
        tools_save(conversation=conversation, lane=tools_lane, tools=tools, choice=choice)
    if cleaned is not None:
        lane = panel_lane or conversation.lanes.order_by("position").first()
        if lane is not None:
            params_save(lane=lane, params=cleaned, sync=bool(data.get("sync_params")))
