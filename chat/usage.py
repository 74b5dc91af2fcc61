"""A conversation's token use and cost, summed over the answers shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.template.loader import render_to_string

from chat.models import Conversation, Message
from chat.versions import path_of


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


def usage_totals_html(*, conversation: Conversation) -> str:
    """The conversation's totals line, to swap in as an answer completes."""
    answers = conversation.messages.filter(
        path_of(conversation).q(), hidden=False, usage__isnull=False
    ).only("conversation_id", "usage", "metrics")  # the id: no query per row
    totals = usage_totals(messages=answers)
    return render_to_string("chat/_totals.html", {"totals": totals, "oob": True})
