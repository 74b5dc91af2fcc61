"""What a page shows of a conversation's settings: the context its templates render
(the parameter panel, the tools editor, a lane's endpoint and model form), built once
for every view that shows them. The socket's fragments are chat/frames.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest

from chat import owned
from chat.forms import LaneSettingsForm
from chat.models import Conversation, Lane, Preset
from chat.params import BY_NAME, params_for
from chat.tools import TEMPLATES, choice_value

# ---------------------------------------------------------------- the parameter panel


def panel_lane(request: HttpRequest, conversation_id: uuid.UUID) -> Lane:
    """The lane the panel edits: the one it names, else the first."""
    # show_lane: the panel's Lane select, asking for another lane's panel.
    wanted = (
        request.POST.get("panel_lane")
        or request.GET.get("show_lane")
        or request.GET.get("panel_lane")
        or ""
    )
    if wanted:
        # A named lane must be one of this conversation's: no falling back to another.
        return owned.lane(request.user, conversation_id, wanted)
    return owned.first_lane(request.user, conversation_id)


def display_value(name: str, value: Any) -> str:
    """A stored value as its panel input shows it."""
    if value is None:
        return ""
    kind = BY_NAME[name].kind
    if kind == "stops":
        return "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in value)
    if kind in ("logit_bias", "json_schema", "json", "metadata"):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind == "bool":
        return "true" if value else "false"
    return str(value)


def panel_context(lane: Lane, *, values: dict[str, str] | None = None, errors=None) -> dict:
    conversation = lane.conversation
    if values is None:
        values = {
            name: display_value(name, v) for name, v in lane.params.items() if name in BY_NAME
        }
    errors = errors or {}
    rows = [
        {"param": p, "value": values.get(p.name, ""), "error": errors.get(p.name)}
        for p in params_for(conversation.mode, lane.wire_api)
    ]
    return {
        "conversation": conversation,
        "lane": lane,
        "panel_lanes": list(conversation.lanes.all()),
        "param_rows": rows,
        "presets": Preset.objects.filter(owner=conversation.owner).only(
            "id", "name", "system_prompt", "tools"
        ),
    }


# ---------------------------------------------------------------- the tools editor


def _name_of(text: str) -> str:
    try:
        raw = json.loads(text)
    except ValueError:
        return ""
    if isinstance(raw, dict):
        function = raw.get("function") if isinstance(raw.get("function"), dict) else raw
        name = function.get("name")
        return name if isinstance(name, str) else ""
    return ""


def tool_rows_named(rows: list[dict[str, Any]], choice: str) -> dict[str, Any]:
    """The editor's rows, each named as its JSON (as typed) names its function, and the
    tool_choice options they make: the enabled tools, and ``choice`` kept even when no
    enabled tool has its name any more (the save then says why it is refused), so that
    the select never silently falls back to another choice."""
    for row in rows:
        row["name"] = _name_of(row["json"])
    names = list(dict.fromkeys(r["name"] for r in rows if r["name"] and r["enabled"]))
    options = [("", "— not sent (auto)"), *((c, c) for c in ("auto", "none", "required"))]
    options += [(f"function:{name}", f"call {name}") for name in names]
    if choice and choice not in {value for value, _ in options}:
        missing = choice.removeprefix("function:")
        options.append((choice, f"call {missing} (not an enabled tool)"))
    return {
        "tool_rows": rows,
        "tool_choice": choice,
        "tool_choice_options": [
            {"value": value, "label": label, "selected": value == choice}
            for value, label in options
        ],
    }


def tools_context(
    conversation: Conversation,
    *,
    rows: list[dict[str, Any]] | None = None,
    choice: str | None = None,
    lane: Lane | None = None,
) -> dict[str, Any]:
    """The editor for the shared tools, or for one lane's own tools (lane given)."""
    entries = lane.effective_tools if lane is not None else conversation.tools
    if rows is None:
        rows = [
            {
                "json": json.dumps(entry["tool"], indent=2, ensure_ascii=False),
                "enabled": entry.get("enabled", True),
                "mock": entry.get("mock", ""),
                "error": "",
            }
            for entry in entries or []
        ]
    choice = choice if choice is not None else choice_value(conversation.tool_choice)
    return {
        "conversation": conversation,
        **tool_rows_named(rows, choice),
        "templates": list(TEMPLATES),
        "tools_lane": lane,
        "tool_lanes": list(conversation.lanes.all()),
    }


# ---------------------------------------------------------------- a lane's head


def lane_form(request: HttpRequest, lane: Lane) -> LaneSettingsForm:
    """A lane's endpoint and model, as its head shows them."""
    return LaneSettingsForm(
        owner=request.user,
        prefix=f"lane{lane.pk}",
        initial={"profile": lane.profile, "model": lane.model, "api": lane.api},
    )
