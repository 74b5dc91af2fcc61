"""The request body each answer is asked with: a lane's context (the shared turns
plus its own answers, of one version), its system prompt, tools and parameters.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from chat.models import Conversation, Lane, Message
from chat.params import request_params, responses_params
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
# A Responses lane's history also reads what its earlier answers were on that API.
RESPONSES_HISTORY_FIELDS = (*HISTORY_FIELDS, "lane_id", "api", "response_id", "output_items")


def lane_history(
    *,
    lane: Lane,
    before_turn: int,
    branch: int | None = None,
    fields: tuple[str, ...] = HISTORY_FIELDS,
) -> list[Message]:
    """A lane's context: the shared turns plus its own answers, in turn order, of the
    version that leads to `branch` (None: the shown one) and no other."""
    tree = Tree(lane.conversation.versions)
    path = tree.path() if branch is None else tree.ancestors(branch)
    return list(
        Message.objects.filter(
            path.q(), conversation_id=lane.conversation_id, turn__lt=before_turn, hidden=False
        )
        .filter(Q(lane__isnull=True) | Q(lane=lane))
        .only(*fields)
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
    if lane.wire_api == "responses":
        return responses_body_build(
            lane=lane, assistant=assistant, stream=stream, question=question
        )
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
        if "input" in body:
            body["input"].append(_user_item({"role": "user", "content": content}))
        else:
            body["messages"].append({"role": "user", "content": content})
    return body


# --- the Responses API ---------------------------------------------------------------


def _input_parts(content: Any) -> list[dict[str, Any]]:
    """Chat content (a string or parts) as Responses input content parts."""
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            item = {"type": "input_image", "image_url": image.get("url", "")}
            if image.get("detail"):
                item["detail"] = image["detail"]
            parts.append(item)
    return parts


def _user_item(payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": payload["role"], "content": _input_parts(payload["content"])}


def _replayable(item: Any) -> bool:
    """A reasoning item worth sending back: one the server can read without having
    stored it (encrypted content), or whose text it sent (llama.cpp, vLLM)."""
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return False
    content = item.get("content")
    return bool(item.get("encrypted_content")) or bool(
        isinstance(content, list) and content and isinstance(content[0], dict)
        and isinstance(content[0].get("text"), str)
    )  # fmt: skip


def _reasoning_input(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("type", "id", "summary", "content", "encrypted_content")
    out = {k: item[k] for k in keep if k in item}
    out.setdefault("summary", [])
    if not out.get("encrypted_content"):
        out.pop("encrypted_content", None)
    return out


def _as_shown(message: Message, items: list[Any]) -> bool:
    """Whether a Responses answer's output items still say what the answer shows (its
    text not edited, the same calls)."""
    texts = [
        part.get("text", "")
        for item in items
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    calls = [
        i.get("call_id") for i in items if isinstance(i, dict) and i.get("type") == "function_call"
    ]
    shown_calls = [c.get("id") for c in message.tool_calls or []]
    return "".join(texts) == (message.content or "") and calls == shown_calls


def _replayed(items: list[Any]) -> list[dict[str, Any]]:
    """An answer's output items as input, in their order and with their ids (a reasoning
    item must come with the items that followed it): reasoning the server can read back,
    messages (their text parts only) and function calls. A reasoning item that cannot be
    sent takes the ids of the others with it (they would name items the server may not
    have), and one with nothing after it is left out."""
    out: list[dict[str, Any]] = []
    dropped = False
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            if _replayable(item):
                out.append(_reasoning_input(item))
            else:
                dropped = True
        elif kind == "message":
            parts = [
                {"type": "output_text", "text": p.get("text", "")}
                for p in item.get("content") or []
                if isinstance(p, dict) and p.get("type") == "output_text"
            ]
            out.append({"type": "message", "role": "assistant", "content": parts,
                        **({"id": item["id"]} if item.get("id") else {})})  # fmt: skip
        elif kind == "function_call":
            keep = ("type", "id", "call_id", "name", "arguments")
            out.append({k: item[k] for k in keep if k in item})
    while out and out[-1]["type"] == "reasoning":
        out.pop()
    if dropped or not any(i["type"] == "reasoning" for i in out):
        for item in out:
            if item["type"] != "reasoning":
                item.pop("id", None)
    return out


def message_items(message: Message) -> list[dict[str, Any]]:
    """One saved message as Responses input items (stateless: the whole history is sent).
    An answer made on the Responses API and shown as it came is sent as its output items
    (reasoning the server can read back, with the items that followed it); any other, or
    an edited one, as shown: its text as an assistant message, its calls as function_call
    items. A tool result is a function_call_output."""
    if message.role == Message.Role.ASSISTANT:
        output = [i for i in message.output_items or [] if isinstance(i, dict)]
        if output and _as_shown(message, output):
            return _replayed(output)
        items: list[dict[str, Any]] = []
        if message.content:
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": message.content}],
                }
            )
        for call in message.tool_calls or []:
            fn = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id") or "",
                    "name": fn.get("name") or "",
                    "arguments": fn.get("arguments") or "",
                }
            )
        return items
    if message.role == Message.Role.TOOL:
        return [
            {"type": "function_call_output", "call_id": message.tool_call_id,
             "output": message.content}
        ]  # fmt: skip
    payload = message_payload(message)
    return [_user_item(payload)] if payload is not None else []


def responses_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat tools (``{"type": "function", "function": {...}}``) in the Responses shape:
    flat function tools."""
    out = []
    for tool in tools:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else None
        if fn is None:
            out.append(tool)
            continue
        # The Responses API makes a function strict unless told otherwise, Chat
        # Completions the reverse: the same tool asks the same of both APIs.
        out.append({"type": "function", **fn, "strict": fn.get("strict", False)})
    return out


def responses_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def _chain_point(history: list[Message], lane: Lane) -> int | None:
    """Where a chained request continues: the index in ``history`` of this lane's last
    answer made on the Responses API with a response id (None: nothing to chain to)."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == Message.Role.ASSISTANT and message.lane_id == lane.pk:
            return index if message.api == "responses" and message.response_id else None
    return None


def _said(item: dict[str, Any]) -> tuple[Any, ...] | None:
    """What an input item says, to compare two contexts: ids, statuses and reasoning
    aside (what the server keeps of its reasoning is its own)."""
    kind = item.get("type", "message")
    if kind == "message":
        parts = item.get("content")
        if isinstance(parts, str):
            return ("message", item.get("role"), parts, ())
        parts = [p for p in parts or [] if isinstance(p, dict)]
        text = "".join(p.get("text", "") for p in parts if isinstance(p.get("text"), str))
        images = tuple(str(p.get("image_url")) for p in parts if p.get("type") == "input_image")
        return ("message", item.get("role"), text, images)
    if kind == "function_call":
        return ("call", item.get("call_id"), item.get("name"), item.get("arguments"))
    if kind == "function_call_output":
        return ("output", item.get("call_id"), item.get("output"))
    return None


def _context(items: list[Any]) -> list[tuple[Any, ...]]:
    return [s for s in (_said(i) for i in items if isinstance(i, dict)) if s is not None]


def _chain_holds(lane: Lane, history: list[Message], point: int, system: list[dict]) -> bool:
    """Whether the server's context for the answer at ``history[point]`` is still what
    the page shows before it: every answer of its chain was asked with what is shown now
    (no earlier turn asked again or switched to another version since, nothing edited),
    and answered as it is shown. Else the turn goes stateless, whole."""
    mine = [
        i
        for i in range(point + 1)
        if history[i].role == Message.Role.ASSISTANT and history[i].lane_id == lane.pk
    ]
    bodies = dict(
        Message.objects.filter(pk__in=[history[i].pk for i in mine]).values_list(
            "pk", "request_body"
        )
    )
    index = point
    while True:
        answer = history[index]
        if not _as_shown(answer, [i for i in answer.output_items or [] if isinstance(i, dict)]):
            return False
        body = bodies.get(answer.pk) or {}
        asked = _context(body.get("input") if isinstance(body.get("input"), list) else [])
        before = [i for i in mine if i < index]
        previous = body.get("previous_response_id")
        if not previous:
            shown = [*system, *(item for m in history[:index] for item in message_items(m))]
            return asked == _context(shown)
        if not before or history[before[-1]].response_id != previous:
            return False
        between = [item for m in history[before[-1] + 1 : index] for item in message_items(m)]
        if asked != _context(between):
            return False
        index = before[-1]


def _responses_history(lane: Lane, assistant: Message) -> list[Message]:
    """The lane's history up to ``assistant``: of its own turn, only what came before it
    (a saved answer is followed in its turn by its tool results and the next answer)."""
    history = lane_history(
        lane=lane,
        before_turn=assistant.turn + 1,
        branch=assistant.branch,
        fields=RESPONSES_HISTORY_FIELDS,
    )
    return [
        m
        for m in history
        if m.pk != assistant.pk
        and (assistant.pk is None or m.turn < assistant.turn or m.pk < assistant.pk)
    ]


def _system_items(lane: Lane, body: dict[str, Any], quirks: dict[str, Any]) -> list[dict]:
    system_prompt = lane.effective_system_prompt
    if not system_prompt:
        return []
    if quirk(quirks, "responses_system") == "instructions":
        body["instructions"] = system_prompt
        return []
    role = quirk(quirks, "system_role")
    return [_user_item({"role": role, "content": system_prompt})]


def responses_body_build(
    *,
    lane: Lane,
    assistant: Message,
    stream: bool = True,
    question: Message | None = None,
    chain: bool | None = None,
) -> dict[str, Any]:
    """A Responses API body for ``assistant``: the same history, system prompt, tools and
    parameters as a chat body, in this API's shape. Stateless (the lane's default): the
    whole conversation as ``input``. Chained (``conversation_state``, or ``chain``): only
    what came after the lane's last answer, with its ``previous_response_id``, and
    ``store`` so that this answer can be chained to in turn."""
    quirks = lane.profile.quirks if lane.profile else {}
    state = lane.params.get("conversation_state") or "stateless"
    chained = state != "stateless" if chain is None else chain
    body: dict[str, Any] = {**_with_model(lane)}
    items = _system_items(lane, body, quirks)
    history = _responses_history(lane, assistant)
    point = _chain_point(history, lane) if chained else None
    if point is not None and not _chain_holds(lane, history, point, items):
        point = None
    if point is not None:
        body["previous_response_id"] = history[point].response_id
        items = []  # the server has the instructions' input and the answers before
        history = history[point + 1 :]
    for message in history:
        items.extend(message_items(message))
    if question is not None:
        items.extend(message_items(question))
    body["input"] = items
    tools = enabled_tools(lane.effective_tools)
    if tools:
        body["tools"] = responses_tools(tools)
        if lane.conversation.tool_choice is not None:
            body["tool_choice"] = responses_tool_choice(lane.conversation.tool_choice)
    params = responses_params(lane.params, quirks=quirks)
    if not tools:
        params.pop("parallel_tool_calls", None)
    if chained:
        params.setdefault("store", True)
    body.update(params)
    if stream:
        body["stream"] = True
    return body


def responses_fallback(lane: Lane, body: dict[str, Any]) -> dict[str, Any] | None:
    """For a chained body, when the lane allows it (``chained_or_whole``): the same
    request with the whole conversation as input instead, for a server that refuses
    ``previous_response_id``. None otherwise. On the database thread."""
    previous = body.get("previous_response_id")
    if not previous or lane.params.get("conversation_state") != "chained_or_whole":
        return None
    answer = (
        Message.objects.filter(lane=lane, response_id=previous, role=Message.Role.ASSISTANT)
        .order_by("-id")
        .first()
    )
    if answer is None:
        return None
    before = responses_body_build(lane=lane, assistant=answer, stream=False, chain=False)
    fallback = {k: v for k, v in body.items() if k != "previous_response_id"}
    fallback["input"] = [*before["input"], *message_items(answer), *body["input"]]
    return fallback
