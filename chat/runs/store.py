"""An answer in the database: the heartbeat of a streaming answer (its text so far), and
the answer as saved when its run ends, with the frame that shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import frames
from chat.models import EndpointProfile, Message
from chat.render import render_markdown
from chat.request_body import LEGACY_CALL_PREFIX
from chat.runs.answer import CONTENT, REASONING, Answer
from chat.toolschema import calls_verdicts
from chat.upstream import UpstreamError


@dataclass
class Outcome:
    """How a run ended, besides its answer."""

    status: str
    body: dict[str, Any]  # as last sent (a retry may have dropped a field)
    metrics: dict[str, Any]
    error: UpstreamError | None = None
    learned_quirks: dict[str, Any] = field(default_factory=dict)


@dataclass
class Store:
    message_id: int
    profile_id: Any

    @database_sync_to_async
    def save_partial(self, answer: Answer) -> None:
        Message.objects.filter(pk=self.message_id, status=Message.Status.STREAMING).update(
            content=answer.text(CONTENT),
            reasoning=answer.text(REASONING),
            heartbeat_at=timezone.now(),
        )

    @database_sync_to_async
    def save_final(self, answer: Answer, outcome: Outcome) -> str:
        answer.finish()  # (done by the relay already, unless it failed)
        content = answer.text(CONTENT)
        message = Message.objects.select_related("conversation").get(pk=self.message_id)
        message.content = content
        message.reasoning = answer.text(REASONING)
        message.choices = answer.choices()
        if message.choices and message.shown_mode == "chat":
            for choice in message.choices:
                choice["html"] = str(render_markdown(choice["content"]))
        message.logprobs = answer.logprobs.get(0)
        # As received, but an echoed secret is no more kept here than in the error.
        message.raw_response = answer.raw_redacted()
        message.rendered = render_markdown(content)
        message.status = outcome.status
        message.finish_reason = answer.finish_reason
        message.usage = answer.usage
        message.metrics = outcome.metrics
        calls = answer.calls()
        if calls and answer.finish_reason == "function_call":
            for number, call in enumerate(calls):
                call["id"] = f"{LEGACY_CALL_PREFIX}{number}"
        message.tool_calls = calls or None
        # Checked here, once, in linear time; pages only read the verdict.
        tools = outcome.body.get("tools") or []
        message.tool_verdicts = calls_verdicts(calls, tools) if calls else None
        message.request_body = outcome.body
        if answer.response is not None:
            message.response_id = (answer.response["id"] or "")[:10_000]
            message.output_items = answer.response["output"]
        if "model" not in outcome.body:
            # No model sent (the endpoint's default): name the one the endpoint used.
            message.model = answer.response_model() or message.model
        message.error = outcome.error.as_dict() if outcome.error else None
        message.heartbeat_at = timezone.now()
        message.save()
        if outcome.learned_quirks and self.profile_id:
            profile = EndpointProfile.objects.get(pk=self.profile_id)
            profile.quirks = {**profile.quirks, **outcome.learned_quirks}
            profile.save(update_fields=["quirks", "updated_at"])
        return frames.answer_final(message)

    @database_sync_to_async
    def save_failure(self, answer: Answer, exc: Exception) -> str:
        """The final save failed: keep the text, say so, never leave it `streaming`."""
        Message.objects.filter(pk=self.message_id).update(
            content=answer.text(CONTENT),
            status=Message.Status.ERROR,
            error={"message": f"The answer could not be saved completely: {exc}"},
            heartbeat_at=timezone.now(),
        )
        message = Message.objects.select_related("conversation").filter(pk=self.message_id)
        found = message.first()
        return frames.message(found) if found is not None else ""
