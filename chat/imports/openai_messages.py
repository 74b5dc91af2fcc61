"""An OpenAI ``messages`` array read as one conversation (chat.imports): bare, or inside a
request body with ``model``, ``tools`` and ``tool_choice``. The opening system (or
developer) message becomes the system prompt; each user message starts a turn."""

from __future__ import annotations

from typing import Any

from chat.imports.checks import (
    ImportFailed,
    Plan,
    check_parts,
    check_tool_choice,
    schema_errors,
)
from chat.imports.schemas import OPENAI_SCHEMA
from chat.models import system_prompt_problem
from chat.tools import ToolError, tool_clean


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text")
    return content or ""


def openai_plan(data: Any) -> Plan:
    body = {"messages": data} if isinstance(data, list) else data
    errors = schema_errors(OPENAI_SCHEMA, body)
    if errors:
        # A bare array: say "[3].role", not "messages[3].role".
        if isinstance(data, list):
            errors = [e.removeprefix("messages") for e in errors]
        raise ImportFailed(errors)
    tools = _tools(body.get("tools") or [], errors)
    check_tool_choice(body.get("tool_choice"), "tool_choice", errors)
    prefix = "" if isinstance(data, list) else "messages"
    system_prompt, messages = _messages(body["messages"], prefix, errors)
    if errors:
        raise ImportFailed(errors)
    return Plan(
        fields={
            "title": _title(messages) or "Imported conversation",
            "system_prompt": system_prompt,
            "tools": tools,
            "tool_choice": body.get("tool_choice"),
        },
        lanes=[{"position": 0, "profile": None, "model": body.get("model", "")}],
        messages=messages,
        default_profile=True,
    )


def _tools(raw_tools: list[Any], errors: list[str]) -> list[dict[str, Any]]:
    tools = []
    for i, raw in enumerate(raw_tools):
        try:
            tools.append({"tool": tool_clean(raw), "enabled": True, "mock": ""})
        except ToolError as exc:
            errors.append(f"tools[{i}]: {exc}")
    return tools


def _messages(
    raw_messages: list[dict[str, Any]], prefix: str, errors: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    system_prompt, messages, turn = "", [], 0
    for i, message in enumerate(raw_messages):
        role = "system" if message["role"] == "developer" else message["role"]
        content = message.get("content")
        if role == "system" and not messages and not system_prompt:
            system_prompt = _text_of(content)  # the opening system message is the prompt
            if problem := system_prompt_problem(system_prompt):
                errors.append(f"{prefix}[{i}].content: {problem}")
            continue
        if role == "user":
            turn += 1
        turn = max(turn, 1)
        messages.append(_message(message, role, turn, f"{prefix}[{i}]", errors))
    return system_prompt, messages


def _message(
    message: dict[str, Any], role: str, turn: int, where: str, errors: list[str]
) -> dict[str, Any]:
    content = message.get("content")
    parts = content if isinstance(content, list) else None
    if parts and role != "user":
        if any(p.get("type") != "text" for p in parts):
            errors.append(f"{where}.content: only a user message may carry images")
        parts = None
    check_parts(parts, f"{where}.content", errors)
    if role == "tool" and not message.get("tool_call_id"):
        errors.append(f"{where}.tool_call_id: a tool result needs the id of its call")
    if message.get("tool_calls") and role != "assistant":
        errors.append(f"{where}.tool_calls: only an assistant message calls tools")
    return {
        "lane": None if role in ("user", "system") else 0,
        "turn": turn,
        "role": role,
        "content": _text_of(content),
        "content_parts": parts,
        "tool_calls": message.get("tool_calls") or None,
        "tool_call_id": message.get("tool_call_id", ""),
        "name": message.get("name", "") if role == "tool" else "",
        "finish_reason": "tool_calls" if message.get("tool_calls") else "",
    }


def _title(messages: list[dict[str, Any]]) -> str:
    """The first user message on one line, cut at 80 characters."""
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    line = " ".join(first_user.split())
    return line[:80] + ("…" if len(line) > 80 else "")
