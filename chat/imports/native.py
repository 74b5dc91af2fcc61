"""This app's own export format (chat/exports.py) read back: the schema first, then each
conversation's lanes, messages and votes checked against each other (chat.imports)."""

from __future__ import annotations

from typing import Any

from chat import versions
from chat.exports import FORMAT, VERSION
from chat.imports.checks import (
    ImportFailed,
    Plan,
    check_choices,
    check_parts,
    check_tool_choice,
    clean_tools,
    once,
    schema_errors,
    timestamp_value,
)
from chat.imports.schemas import NATIVE_SCHEMA
from chat.models import Conversation, system_prompt_problem
from chat.params import check_params


def native_plans(data: dict[str, Any]) -> list[Plan]:
    version = data.get("version")
    if data.get("format") == FORMAT and isinstance(version, int) and version > VERSION:
        raise ImportFailed(
            [
                f"version: this file is format version {version}; this app reads up to "
                f"version {VERSION}. Update the app to import it."
            ]
        )
    errors = schema_errors(NATIVE_SCHEMA, data)
    if errors:
        raise ImportFailed(errors)
    plans = [
        _conversation_plan(conv, f"conversations[{c}]", errors)
        for c, conv in enumerate(data["conversations"])
    ]
    if errors:
        raise ImportFailed(errors)
    return plans


def _conversation_plan(conv: dict[str, Any], where: str, errors: list[str]) -> Plan:
    mode = conv.get("mode", Conversation.Mode.CHAT)
    tools = clean_tools(conv.get("tools", []), f"{where}.tools", errors)
    check_tool_choice(conv.get("tool_choice"), f"{where}.tool_choice", errors)
    lanes = _lanes(conv["lanes"], mode, where, errors)
    positions = {lane["position"] for lane in lanes}
    tree = versions.clean(conv.get("versions"), f"{where}.versions", errors)
    messages = _messages(conv["messages"], positions, tree, where, errors)
    votes = _votes(conv.get("votes", []), positions, where, errors)
    if problem := system_prompt_problem(conv.get("system_prompt")):
        errors.append(f"{where}.system_prompt: {problem}")
    return Plan(
        fields={
            "title": conv.get("title", ""),
            "mode": mode,
            "system_prompt": conv.get("system_prompt", ""),
            "tools": tools or [],
            "tool_choice": conv.get("tool_choice"),
            "pinned": conv.get("pinned", False),
            "blind": conv.get("blind", False),
            "versions": tree,
        },
        lanes=lanes,
        messages=messages,
        votes=votes,
        created_at=timestamp_value(conv.get("created_at"), f"{where}.created_at", errors),
        updated_at=timestamp_value(conv.get("updated_at"), f"{where}.updated_at", errors),
    )


def _lanes(
    raw_lanes: list[dict[str, Any]], mode: str, where: str, errors: list[str]
) -> list[dict[str, Any]]:
    lanes, positions = [], set()
    for i, lane in enumerate(raw_lanes):
        lw = f"{where}.lanes[{i}]"
        position = lane["position"]
        once(position, positions, f"{lw}.position: another lane has position {position}", errors)
        params, problems = check_params(lane.get("params", {}), mode=mode)
        errors += [f"{lw}.params.{name}: {exc.message}" for name, exc in problems.items()]
        if problem := system_prompt_problem(lane.get("system_prompt")):
            errors.append(f"{lw}.system_prompt: {problem}")
        lanes.append(
            {
                "position": lane["position"],
                "profile": lane.get("profile"),
                "model": lane.get("model", ""),
                "params": params,
                "system_prompt": lane.get("system_prompt"),
                "tools": clean_tools(lane.get("tools"), f"{lw}.tools", errors),
                "api": lane.get("api", ""),
            }
        )
    return lanes


def _messages(
    raw_messages: list[dict[str, Any]],
    positions: set[int],
    tree: dict[str, Any],
    where: str,
    errors: list[str],
) -> list[dict[str, Any]]:
    branches = {versions.ROOT, *(int(k) for k in tree.get("branches", {}))}
    messages = []
    for m, message in enumerate(raw_messages):
        mw = f"{where}.messages[{m}]"
        if message.get("branch", versions.ROOT) not in branches:
            errors.append(f"{mw}.branch: no version {message['branch']} in versions")
        if message.get("lane") is not None and message["lane"] not in positions:
            errors.append(f"{mw}.lane: no lane has position {message['lane']}")
        if message["role"] == "tool" and not message.get("tool_call_id"):
            errors.append(f"{mw}.tool_call_id: a tool result needs the id of its call")
        check_parts(message.get("content_parts"), f"{mw}.content_parts", errors)
        check_choices(message, mw, errors)
        created = timestamp_value(message.get("created_at"), f"{mw}.created_at", errors)
        messages.append({**message, "created_at": created})
    return messages


def _votes(
    raw_votes: list[dict[str, Any]], positions: set[int], where: str, errors: list[str]
) -> list[dict[str, Any]]:
    votes, voted = [], set()
    for v, vote in enumerate(raw_votes):
        vw = f"{where}.votes[{v}]"
        once(vote["turn"], voted, f"{vw}.turn: another vote is on turn {vote['turn']}", errors)
        winner = vote.get("winner_position")
        if winner is not None and winner not in positions:
            errors.append(f"{vw}.winner_position: no lane has position {winner}")
        timestamp_value(vote.get("created_at"), f"{vw}.created_at", errors)
        votes.append(vote)
    return votes
