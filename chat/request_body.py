"""The request body each answer is asked with: a lane's context (the shared turns
plus its own answers, of one version), its system prompt, tools and parameters.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from chat.models import Conversation, Lane, Message
from chat.params import request_params
from chat.quirks import quirk
from chat.tools import enabled_tools
from chat.versions import Tree, next_turn, path_of

# Ids given to legacy function_call answers (which carry none).
LEGACY_CALL_PREFIX = "call_legacy_"


def _with_model(lane: Lane) -> dict[str, Any]:
    # A blank model on an endpoint with a default: no `model` at all (the endpoint picks).
    return {"model": lane.model} if lane.model else {}


# What a request body reads of the history (message_payload and its caller), and
# nothing else: not the bulk of each saved answer (its raw stream, HTML, and the request
# that produced it, itself the whole history before it, so reading it made each turn
# cost the square of the conversation), nor the fields that only cost decoding.
HISTORY_FIELDS = (
    "id", "conversation_id", "lane_id", "turn", "role", "content", "content_parts",
    "tool_calls", "tool_call_id", "name", "finish_reason",
)  # fmt: skip


def lane_history(*, lane: Lane, before_turn: int, branch: int | None = None) -> list[Message]:
    """A lane's context: the shared turns plus its own answers, in turn order, of the
    version that leads to `branch` (None: the shown one) and no other."""
    tree = Tree(lane.conversation.versions)
    path = tree.path() if branch is None else tree.ancestors(branch)
    return list(
        Message.objects.filter(
            path.q(), conversation_id=lane.conversation_id, turn__lt=before_turn, hidden=False
        )
        .filter(Q(lane__isnull=True) | Q(lane=lane))
        .only(*HISTORY_FIELDS)
        .order_by("turn", "id")
    )


def message_payload(message: Message) -> dict[str, Any] | None:
    """One message in the OpenAI `messages` shape, or None when it carries nothing."""
    if message.role == Message.Role.ASSISTANT:
        if not message.content and not message.tool_calls:
            return None
        payload: dict[str, Any] = {"role": "assistant", "content": message.content or None}
        if message.tool_calls and message.finish_reason == "function_call":
            # A legacy function-calling server answers with function_call, not tool_calls.
            payload["function_call"] = message.tool_calls[0]["function"]
        elif message.tool_calls:
            payload["tool_calls"] = message.tool_calls
        return payload
    if message.role == Message.Role.TOOL:
        if message.tool_call_id.startswith(LEGACY_CALL_PREFIX):
            return {"role": "function", "name": message.name, "content": message.content}
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    return {"role": message.role, "content": message.content_parts or message.content}


def _add_stream(body: dict[str, Any], *, stream: bool, quirks: dict[str, Any]) -> None:
    if stream:
        body["stream"] = True
        if quirk(quirks, "include_usage"):
            body["stream_options"] = {"include_usage": True}


def completion_body_build(*, lane: Lane, prompt: str, stream: bool = True) -> dict[str, Any]:
    """Legacy /v1/completions: the prompt box is the whole prompt, no history."""
    quirks = lane.profile.quirks if lane.profile else {}
    body: dict[str, Any] = {**_with_model(lane), "prompt": prompt}
    body.update(request_params(lane.params, mode=Conversation.Mode.COMPLETION, quirks=quirks))
    _add_stream(body, stream=stream, quirks=quirks)
    return body


def request_body_build(
    *, lane: Lane, assistant: Message, stream: bool = True, question: Message | None = None
) -> dict[str, Any]:
    """The body for ``assistant`` (saved or not). ``question``: the turn's question, not
    saved yet (a send builds its bodies before its transaction, see turns.turn_save):
    it ends the history, as it will once saved."""
    conversation = lane.conversation
    if conversation.mode == Conversation.Mode.COMPLETION:
        if question is not None:
            prompt = question.content
        else:
            prompt = (
                Message.objects.filter(
                    conversation_id=conversation.pk,
                    turn=assistant.turn,
                    branch=assistant.branch,
                    role=Message.Role.USER,
                )
                .values_list("content", flat=True)
                .first()
            )
        return completion_body_build(lane=lane, prompt=prompt or "", stream=stream)
    quirks = lane.profile.quirks if lane.profile else {}
    system_prompt = lane.effective_system_prompt
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": quirk(quirks, "system_role"), "content": system_prompt})
    for message in lane_history(lane=lane, before_turn=assistant.turn + 1, branch=assistant.branch):
        if message.pk == assistant.pk:
            continue
        payload = message_payload(message)
        if payload is not None:
            messages.append(payload)
    if question is not None:
        messages.append(message_payload(question))
    body: dict[str, Any] = {**_with_model(lane), "messages": messages}
    tools = enabled_tools(lane.effective_tools)
    if tools:
        body["tools"] = tools
        if conversation.tool_choice is not None:
            body["tool_choice"] = conversation.tool_choice
    params = request_params(lane.params, mode=conversation.mode, quirks=quirks)
    if not tools:
        params.pop("parallel_tool_calls", None)  # meaningless, and some servers reject it
    body.update(params)
    _add_stream(body, stream=stream, quirks=quirks)
    return body


def draft_body_build(*, lane: Lane, content: str) -> dict[str, Any]:
    """The body the next send would use, for "copy as code" before sending."""
    conversation = lane.conversation
    if conversation.mode == Conversation.Mode.COMPLETION:
        return completion_body_build(lane=lane, prompt=content)
    path = path_of(conversation)
    turn = max(next_turn(conversation=conversation, path=path), path.leaf_start)
    draft = Message(
        conversation=conversation,
        lane=lane,
        branch=path.leaf,
        turn=turn,
        role=Message.Role.ASSISTANT,
    )
    body = request_body_build(lane=lane, assistant=draft)
    if content.strip():
        body["messages"].append({"role": "user", "content": content})
    return body
