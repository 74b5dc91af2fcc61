"""The tools editor of a conversation: function tools as JSON, live-validated."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chat import composer, owned
from chat.models import Conversation, Lane
from chat.presenters import tool_rows_named, tools_context
from chat.tools import TEMPLATE_MOCKS, TEMPLATES, _values, row_errors, tools_from_form


def _tools_lane(request: HttpRequest, conversation: Conversation) -> Lane | None:
    """The lane whose own tools are edited, or None for the shared tools."""
    wanted = request.POST.get("tools_lane") or request.GET.get("tools_lane") or ""
    return owned.lane_in(conversation, wanted)


@require_GET
def tools_panel(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = owned.conversation(request.user, conversation_id)
    lane = _tools_lane(request, conversation)
    return render(request, "chat/_tools.html", tools_context(conversation, lane=lane))


@require_POST
def tools_shared(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """A lane goes back to the shared tools."""
    conversation = owned.conversation(request.user, conversation_id)
    lane = _tools_lane(request, conversation)
    if lane is not None:
        lane.tools = None
        lane.save(update_fields=["tools"])
    return render(request, "chat/_tools.html", tools_context(conversation, lane=lane))


def _posted_rows(request: HttpRequest) -> list[dict[str, Any]]:
    jsons = _values(request.POST, "tool_json")
    mocks = _values(request.POST, "tool_mock")
    enabled = set(_values(request.POST, "tool_enabled"))
    errors = row_errors(request.POST)
    return [
        {
            "json": text,
            "enabled": str(row) in enabled,
            "mock": mocks[row] if row < len(mocks) else "",
            "error": errors.get(row, ""),
        }
        for row, text in enumerate(jsons)
    ]


@require_POST
def tools_save(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Autosave: valid tools are kept; each problem shows under its row."""
    conversation = owned.conversation(request.user, conversation_id)
    lane = _tools_lane(request, conversation)
    tools, choice, errors = tools_from_form(request.POST)
    if not errors:
        composer.tools_save(conversation=conversation, lane=lane, tools=tools, choice=choice)
    rows = _posted_rows(request)
    choice_error = errors[-1] if errors and not any(r["error"] for r in rows) else ""
    raw_choice = (_values(request.POST, "tool_choice") or [""])[0]
    context = {**tool_rows_named(rows, raw_choice), "saved": not errors}
    return render(request, "chat/_tools_status.html", {**context, "choice_error": choice_error})


@require_POST
def tools_edit(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Add a tool (blank or from a template) or remove one; the rest is kept as typed."""
    conversation = owned.conversation(request.user, conversation_id)
    rows = _posted_rows(request)
    template = request.POST.get("add")
    if template is not None:
        if template in TEMPLATES:
            tool = TEMPLATES[template]
            mock = TEMPLATE_MOCKS.get(template, "")
        else:
            tool = {
                "type": "function",
                "function": {
                    "name": f"tool_{len(rows) + 1}",
                    "description": "",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            mock = ""
        rows.append(
            {"json": json.dumps(tool, indent=2), "enabled": True, "mock": mock, "error": ""}
        )
    remove = request.POST.get("remove")
    if remove is not None and remove.isdigit() and int(remove) < len(rows):
        del rows[int(remove)]
    choice = request.POST.get("tool_choice", "")
    data = {
        "tool_json": [r["json"] for r in rows],
        "tool_mock": [r["mock"] for r in rows],
        "tool_enabled": [str(i) for i, r in enumerate(rows) if r["enabled"]],
        "tool_choice": choice,
    }
    lane = _tools_lane(request, conversation)
    tools, tool_choice, errors = tools_from_form(data)
    if not errors:
        composer.tools_save(conversation=conversation, lane=lane, tools=tools, choice=tool_choice)
    for row, error in row_errors(data).items():
        rows[row]["error"] = error
    context = tools_context(conversation, rows=rows, choice=choice, lane=lane)
    context["saved"] = not errors
    return render(request, "chat/_tools.html", context)
