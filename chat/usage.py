"""A conversation's token use and cost, summed over the answers shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chat.models import Message


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
