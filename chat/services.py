"""Business actions shared by the views and the websocket consumer.

Keyword-only, typed, named `<thing>_<action>`. Synchronous: async callers wrap them
with `database_sync_to_async`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from chat.errors import ActionError
from chat.history import sidebar_changed
from chat.models import Conversation, EndpointProfile, Lane, Message, Preset
from chat.params import BY_NAME, request_params
from chat.render import SCRIPT_LINE_RE, plain_text
from chat.tools import enabled_tools
from chat.versions import Path, Tree, path_of

DEMO_BASE_URL = "http://fake.invalid/v1"
# Ids given to legacy function_call answers (which carry none).
LEGACY_CALL_PREFIX = "call_legacy_"
DEMO_MODELS = ["demo", "demo-fast", "demo-slow"]
DATA_URL = re.compile(
    r"data:(?P<mime>image/(?:png|jpeg|gif|webp));base64,(?P<data>[A-Za-z0-9+/=]+)"
)
IMAGE_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
}


def profile_ensure_demo(*, owner: AbstractBaseUser) -> EndpointProfile | None:
    if not settings.DEMO_ENDPOINT:
        return None
    profile, _ = EndpointProfile.objects.get_or_create(
        owner=owner,
        is_demo=True,
        defaults={
            "name": "Demo (offline)",
            "base_url": DEMO_BASE_URL,
            "default_model": "demo",
            "models_cache": DEMO_MODELS,
            "models_fetched_at": timezone.now(),
        },
    )
    return profile


def profile_default(*, owner: AbstractBaseUser) -> EndpointProfile | None:
    """The profile a new conversation starts with: the last one used, else any."""
    lane = (
        Lane.objects.filter(conversation__owner=owner, profile__isnull=False)
        .select_related("profile")
        .order_by("-conversation__updated_at")
        .first()
    )
    if lane:
        return lane.profile
    return EndpointProfile.objects.filter(owner=owner).order_by("-is_demo", "name").first()


def model_for_profile(*, profile: EndpointProfile, current: str = "") -> str:
    """The model a form shows once `profile` is picked: the one typed if this endpoint
    lists it, else the endpoint's default, else its first listed model, else none (never
    another endpoint's model, which this one would refuse or silently replace)."""
    names = profile.model_names
    if current and current in names:
        return current
    return profile.default_model or next(iter(names), "")


def conversation_create(
    *,
    owner: AbstractBaseUser,
    profile: EndpointProfile | None,
    model: str,
    system_prompt: str = "",
    mode: str = Conversation.Mode.CHAT,
) -> Conversation:
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner, system_prompt=system_prompt, mode=mode
        )
        Lane.objects.create(conversation=conversation, position=0, profile=profile, model=model)
    return conversation


def conversation_mode_set(*, conversation: Conversation, mode: str) -> bool:
    """Switch chat <-> completions: new turns use the new mode; every message made so far
    keeps the mode it was made in (its request, and how it is shown). Returns whether the
    mode changed."""
    if mode not in Conversation.Mode.values:
        raise ActionError("Pick Chat or Completions.")
    if mode == conversation.mode:
        return False
    with transaction.atomic():
        conversation.messages.filter(mode="").update(mode=conversation.mode)
        conversation.mode = mode
        conversation.save(update_fields=["mode", "updated_at"])
    return True


def title_from(text: str) -> str:
    """A conversation's first title: its first question as plain words (no markdown, no
    demo scripting line), cut at 80 characters."""
    line = plain_text(text) or " ".join(SCRIPT_LINE_RE.sub("", text).split())
    return line[:80] + ("…" if len(line) > 80 else "")


def images_clean(*, data_urls: list[str], urls: list[str]) -> list[dict[str, Any]]:
    """Image content parts from uploads (data URLs) and typed URLs, within the limits.
    The server never fetches an image URL: it goes to the endpoint as it is."""
    urls = [u.strip() for u in urls if u.strip()]
    if len(data_urls) + len(urls) > settings.IMAGE_MAX_COUNT:
        raise ActionError(f"At most {settings.IMAGE_MAX_COUNT} images per message.")
    parts: list[dict[str, Any]] = []
    for number, data_url in enumerate(data_urls, start=1):
        match = DATA_URL.fullmatch(data_url)
        if not match:
            raise ActionError(f"Image {number} is not a PNG, JPEG, GIF or WebP upload.")
        try:
            raw = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ActionError(f"Image {number} is not valid base64 data.") from None
        if len(raw) > settings.IMAGE_MAX_BYTES:
            raise ActionError(
                f"Image {number} is {len(raw) / 1_048_576:.1f} MB; the limit is "
                f"{settings.IMAGE_MAX_BYTES / 1_048_576:g} MB."
            )
        if not raw.startswith(IMAGE_MAGIC[match["mime"]]):
            raise ActionError(f"Image {number} is not really a {match['mime']} file.")
        parts.append({"type": "image_url", "image_url": {"url": data_url}})
    for url in urls:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ActionError(f"{url[:80]!r} is not an http(s) image URL.") from None
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def quota_check(*, conversation: Conversation, new_runs: int) -> None:
    """Refuse (before saving anything) a send that would pass the user's limits."""
    owner_id = conversation.owner_id
    if settings.RUNS_PER_USER_MAX:
        streaming = Message.objects.filter(conversation__owner_id=owner_id).live_streaming()
        count = streaming.count()
        if count + new_runs > settings.RUNS_PER_USER_MAX:
            raise ActionError(
                f"You have {count} answers streaming and this needs {new_runs} more; "
                f"the limit is {settings.RUNS_PER_USER_MAX} at once. Wait for some to finish "
                "or stop them."
            )
    if settings.ANSWERS_PER_MINUTE:
        since = timezone.now() - timedelta(seconds=60)
        recent = list(
            Message.objects.filter(
                conversation__owner_id=owner_id,
                role=Message.Role.ASSISTANT,
                created_at__gte=since,
                # Only answers a run started carry a heartbeat: imported and branched
                # messages are not requests to anyone.
                heartbeat_at__isnull=False,
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)[: settings.ANSWERS_PER_MINUTE + new_runs]
        )
        if len(recent) + new_runs > settings.ANSWERS_PER_MINUTE:
            wait = max(1, int((recent[0] - since).total_seconds()) + 1) if recent else 60
            raise ActionError(
                f"Too many answers: the limit is {settings.ANSWERS_PER_MINUTE} a minute. "
                f"Try again in {wait} s; your message is kept."
            )


def lane_ready(lane: Lane) -> bool:
    """An endpoint, and a model unless the endpoint has a default one."""
    return lane.profile is not None and bool(lane.model or lane.profile.model_optional)


def _with_model(lane: Lane) -> dict[str, Any]:
    # A blank model on an endpoint with a default: no `model` at all (the endpoint picks).
    return {"model": lane.model} if lane.model else {}


def turn_send(
    *,
    conversation: Conversation,
    content: str,
    images: list[dict[str, Any]] | None = None,
    turn: int | None = None,
) -> tuple[Message, list[Message]]:
    """Save the user's message (before anything goes upstream) and one streaming
    placeholder per lane, at the end of the shown version (or at `turn`, an edit's
    first). The caller starts the runs."""
    # PostgreSQL refuses U+0000 in text; keep the rest of what was typed.
    content = content.strip("\n").replace("\x00", "\ufffd")
    if not content.strip():
        raise ActionError("Type a message first.")
    if len(content) > settings.MAX_MESSAGE_CHARS:
        raise ActionError(
            f"The message is {len(content):,} characters; the limit is "
            f"{settings.MAX_MESSAGE_CHARS:,}."
        )
    if images and conversation.mode != Conversation.Mode.CHAT:
        raise ActionError("Images need a chat conversation, not completions mode.")
    lanes = list(conversation.lanes.select_related("profile"))
    problems = [
        f"Lane {lane.position + 1}: pick an endpoint" if lane.profile is None
        else f"Lane {lane.position + 1}: pick a model"
        for lane in lanes
        if not lane_ready(lane)
    ]  # fmt: skip
    if problems:
        # Refused before saving; the composer keeps the text so nothing is lost.
        raise ActionError("; ".join(problems))
    with transaction.atomic():
        busy = Message.objects.select_for_update().filter(conversation=conversation)
        if list(busy.live_streaming().values_list("id", flat=True)):
            raise ActionError("An answer is still streaming: wait for it or press Stop.")
        quota_check(conversation=conversation, new_runs=len(lanes))
        path = path_of(conversation)
        if turn is None:
            turn = max(next_turn(conversation=conversation, path=path), path.leaf_start)
        user_message = Message.objects.create(
            conversation=conversation,
            branch=path.leaf,
            turn=turn,
            role=Message.Role.USER,
            content=content,
            content_parts=[{"type": "text", "text": content}, *images] if images else None,
        )
        if not conversation.title:
            conversation.title = title_from(content)
            # A new conversation (or one that was untitled) shows up in every open page.
            sidebar_changed(owner_id=conversation.owner_id)
        conversation.save(update_fields=["title", "updated_at"])
        now = timezone.now()
        placeholders = [
            Message.objects.create(
                conversation=conversation,
                lane=lane,
                branch=path.leaf,
                turn=turn,
                role=Message.Role.ASSISTANT,
                model=lane.model,
                status=Message.Status.STREAMING,
                heartbeat_at=now,
            )
            for lane in lanes
        ]
    return user_message, placeholders


def tool_results_submit(
    *, conversation: Conversation, assistant_id: int, results: dict[str, str]
) -> tuple[Message, list[Message], Message]:
    """Save the user's results for an answer's tool calls and a streaming placeholder
    for the model's next answer in that lane. Returns (the answer, results, placeholder)."""
    with transaction.atomic():
        answer = (
            Message.objects.select_related("lane__profile")
            .filter(pk=assistant_id, conversation=conversation, role=Message.Role.ASSISTANT)
            .first()
        )
        if answer is None or not answer.tool_calls or answer.lane is None:
            raise ActionError("That answer has no tool calls to answer.")
        path = path_of(conversation)
        if not path.contains(answer):
            raise ActionError("That answer belongs to a version not shown; reload the page.")
        later = Message.objects.filter(path.q(), lane=answer.lane, id__gt=answer.pk).exists()
        if later or answer.status != Message.Status.COMPLETE:
            raise ActionError("These tool calls were already answered.")
        if conversation.messages.live_streaming().exists():
            raise ActionError("An answer is still streaming: wait for it or press Stop.")
        missing = [
            call["function"]["name"] or call["id"]
            for call in answer.tool_calls
            if not results.get(call["id"], "").strip()
        ]
        if missing:
            raise ActionError(f"Give a result for every call (missing: {', '.join(missing)}).")
        quota_check(conversation=conversation, new_runs=1)
        tool_messages = [
            Message.objects.create(
                conversation=conversation,
                lane=answer.lane,
                branch=answer.branch,
                turn=answer.turn,
                role=Message.Role.TOOL,
                tool_call_id=call["id"],
                name=call["function"]["name"],
                content=results[call["id"]].replace("\x00", "\ufffd"),
            )
            for call in answer.tool_calls
        ]
        placeholder = Message.objects.create(
            conversation=conversation,
            lane=answer.lane,
            branch=answer.branch,
            turn=answer.turn,
            role=Message.Role.ASSISTANT,
            model=answer.lane.model,
            status=Message.Status.STREAMING,
            heartbeat_at=timezone.now(),
        )
        conversation.save(update_fields=["updated_at"])
    return answer, tool_messages, placeholder


def conversation_tools_save(
    *, conversation: Conversation, tools: list[dict[str, Any]], tool_choice: Any
) -> None:
    if tools != conversation.tools or tool_choice != conversation.tool_choice:
        conversation.tools = tools
        conversation.tool_choice = tool_choice
        conversation.save(update_fields=["tools", "tool_choice", "updated_at"])


def _busy(conversation: Conversation) -> bool:
    return conversation.messages.live_streaming().exists()


def next_turn(*, conversation: Conversation, path: Path | None = None) -> int:
    """The number the next question of the shown version gets."""
    path = path or path_of(conversation)
    return (conversation.messages.filter(path.q()).aggregate(m=Max("turn"))["m"] or 0) + 1


def answer_attempt_new(*, lane: Lane, turn: int, branch: int) -> Message:
    """A new try at a lane's answer to a turn; the earlier ones stay as alternatives."""
    previous = Message.objects.filter(lane=lane, turn=turn, branch=branch)
    attempt = (previous.aggregate(m=Max("attempt"))["m"] or 0) + 1
    previous.update(hidden=True)
    return Message.objects.create(
        conversation_id=lane.conversation_id,
        lane=lane,
        branch=branch,
        turn=turn,
        role=Message.Role.ASSISTANT,
        model=lane.model,
        status=Message.Status.STREAMING,
        heartbeat_at=timezone.now(),
        attempt=attempt,
    )


def answers_regenerate(
    *, conversation: Conversation, positions: list[int] | None = None, turn: int | None = None
) -> list[Message]:
    """Regenerate a turn's answer (default: the latest turn) in the given lanes (None:
    every lane). The earlier answers stay as versions; later turns are left as they are."""
    with transaction.atomic():
        if _busy(conversation):
            raise ActionError("An answer is still streaming: wait for it or press Stop.")
        path = path_of(conversation)
        if turn is None:
            turn = next_turn(conversation=conversation, path=path) - 1
        branch = path.branch_at(turn)
        asked = conversation.messages.filter(turn=turn, branch=branch, lane__isnull=True)
        if not turn or not asked.exists():
            raise ActionError("There is no message to answer again yet.")
        lanes = list(conversation.lanes.select_related("profile"))
        if positions is not None:
            lanes = [lane for lane in lanes if lane.position in positions]
        if not lanes:
            raise ActionError("No such lane.")
        for lane in lanes:
            if not lane_ready(lane):
                raise ActionError(f"Lane {lane.position + 1}: pick an endpoint and a model.")
        quota_check(conversation=conversation, new_runs=len(lanes))
        placeholders = [answer_attempt_new(lane=lane, turn=turn, branch=branch) for lane in lanes]
        conversation.save(update_fields=["updated_at"])
    return placeholders


def attempt_show(*, lane: Lane, turn: int, attempt: int) -> None:
    """Show another attempt of a lane's answer: it becomes the lane's context."""
    with transaction.atomic():
        branch = path_of(lane.conversation).branch_at(turn)
        answers = Message.objects.filter(lane=lane, turn=turn, branch=branch)
        if not answers.filter(attempt=attempt).exists():
            raise ActionError("No such version.")
        if answers.live_streaming().exists():
            raise ActionError("Wait for the answer to finish.")
        answers.exclude(attempt=attempt).update(hidden=True)
        answers.filter(attempt=attempt).update(hidden=False)


def lane_params_save(*, lane: Lane, params: dict[str, Any], mode: str | None = None) -> None:
    """`params`: the values of `mode`'s parameters (None: of every mode); a lane keeps the
    values it has for the other mode's, for when the conversation switches back."""
    if mode is not None:
        kept = {
            name: value
            for name, value in lane.params.items()
            if name in BY_NAME and mode not in BY_NAME[name].modes
        }
        params = {**kept, **params}
    if params != lane.params:
        lane.params = params
        lane.save(update_fields=["params"])


def usage_totals(*, messages: Iterable[Message]) -> dict[str, Any]:
    """A conversation's token use and cost, summed over the answers given."""
    totals: dict[str, Any] = {"prompt": 0, "completion": 0, "reasoning": 0, "cached": 0}
    keys = {
        "prompt": "prompt_tokens",
        "completion": "completion_tokens",
        "reasoning": "reasoning_tokens",
        "cached": "cached_tokens",
    }
    cost = None
    for message in messages:
        usage = message.usage or {}
        for name, key in keys.items():
            totals[name] += usage.get(key) or 0
        if (message.metrics or {}).get("cost") is not None:
            cost = (cost or 0) + message.metrics["cost"]
    totals["total"] = totals["prompt"] + totals["completion"]
    totals["cost"] = cost
    return totals


def lane_tools(*, lane: Lane) -> list[dict[str, Any]]:
    """The tools editor's entries a lane uses: its own, else the conversation's."""
    return lane.tools if lane.tools is not None else lane.conversation.tools


def preset_save(
    *,
    owner: AbstractBaseUser,
    name: str,
    lane: Lane,
    params: dict[str, Any],
    with_system: bool,
    with_tools: bool,
) -> tuple[Preset, bool]:
    """Save (or update, by name) a preset from a lane; returns (preset, created)."""
    conversation = lane.conversation
    return Preset.objects.update_or_create(
        owner=owner,
        name=name,
        defaults={
            "params": params,
            "system_prompt": conversation.system_prompt if with_system else "",
            # Every entry, disabled ones and mock results included, so apply restores the
            # editor as it was; tool_choice travels with them (it may name one).
            "tools": lane_tools(lane=lane) if with_tools else None,
            "tool_choice": conversation.tool_choice if with_tools else None,
        },
    )


def preset_apply(*, preset: Preset, lane: Lane, params: dict[str, Any]) -> set[str]:
    """Apply a preset to a lane; returns what changed besides the parameters
    ({"system_prompt", "tools"})."""
    conversation = lane.conversation
    lane_params_save(lane=lane, params=params, mode=conversation.mode)
    changed: set[str] = set()
    if preset.system_prompt:
        conversation.system_prompt = preset.system_prompt
        conversation.save(update_fields=["system_prompt", "updated_at"])
        changed.add("system_prompt")
    if preset.tools is not None:
        # A lane that already has its own tools, or one lane of a comparison, gets the
        # preset's tools for itself; a plain chat's tools are the conversation's.
        if lane.tools is not None or conversation.lanes.count() > 1:
            lane.tools = preset.tools
            lane.save(update_fields=["tools"])
        else:
            conversation.tools = preset.tools
        conversation.tool_choice = preset.tool_choice
        conversation.save(update_fields=["tools", "tool_choice", "updated_at"])
        changed.add("tools")
    return changed


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
        if quirks.get("include_usage", True):
            body["stream_options"] = {"include_usage": True}


def completion_body_build(*, lane: Lane, prompt: str, stream: bool = True) -> dict[str, Any]:
    """Legacy /v1/completions: the prompt box is the whole prompt, no history."""
    quirks = lane.profile.quirks if lane.profile else {}
    body: dict[str, Any] = {**_with_model(lane), "prompt": prompt}
    body.update(request_params(lane.params, mode=Conversation.Mode.COMPLETION, quirks=quirks))
    _add_stream(body, stream=stream, quirks=quirks)
    return body


def request_body_build(*, lane: Lane, assistant: Message, stream: bool = True) -> dict[str, Any]:
    conversation = lane.conversation
    if conversation.mode == Conversation.Mode.COMPLETION:
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
    system_prompt = (
        lane.system_prompt if lane.system_prompt is not None else conversation.system_prompt
    )
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": quirks.get("system_role", "system"), "content": system_prompt})
    for message in lane_history(lane=lane, before_turn=assistant.turn + 1, branch=assistant.branch):
        if message.pk == assistant.pk:
            continue
        payload = message_payload(message)
        if payload is not None:
            messages.append(payload)
    body: dict[str, Any] = {**_with_model(lane), "messages": messages}
    tools = enabled_tools(lane.tools if lane.tools is not None else conversation.tools)
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


def messages_mark_interrupted(*, conversation: Conversation) -> int:
    """Persist `interrupted` for streaming messages whose run died with its process."""
    return conversation.messages.stale_streaming().update(
        status=Message.Status.INTERRUPTED,
        error={"message": "The run stopped when its server process ended."},
    )
