"""Token logprobs of a choice (chat or legacy completion shape) as a ``Logprobs`` event."""

from __future__ import annotations

import math
from typing import Any

from .events import Logprobs

# OpenAI's stand-in for a logprob of minus infinity.
LOGPROB_FLOOR = -9999.0


def _logprob(value: Any) -> float:
    """A finite logprob: null/NaN (unknown) is 0.0, minus infinity is ``LOGPROB_FLOOR``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    value = float(value)
    if math.isnan(value):
        return 0.0
    return min(max(value, LOGPROB_FLOOR), 0.0)


def _token_text(item: dict[str, Any]) -> str:
    token = item.get("token")
    if isinstance(token, str):
        return token
    raw = item.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw).decode("utf-8", errors="replace")
    return "" if token is None else str(token)


def _ranked(top: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(top, key=lambda t: -t["logprob"])


def _chat_logprob_tokens(content: list[Any]) -> list[dict[str, Any]]:
    """``logprobs.content`` of a chat choice: ``[{token, logprob, bytes, top_logprobs}]``."""
    tokens = []
    for item in content:
        if not isinstance(item, dict):
            continue
        top = item.get("top_logprobs")
        alternatives = [
            {"token": _token_text(t), "logprob": _logprob(t.get("logprob"))}
            for t in (top if isinstance(top, list) else [])
            if isinstance(t, dict)
        ]
        tokens.append(
            {
                "token": _token_text(item),
                "logprob": _logprob(item.get("logprob")),
                "top": _ranked(alternatives),
            }
        )
    return tokens


def _legacy_logprob_tokens(lp: dict[str, Any]) -> list[dict[str, Any]]:
    """A legacy completion's ``{tokens, token_logprobs, top_logprobs: [{tok: lp}]}``."""
    names = lp.get("tokens")
    values = lp.get("token_logprobs")
    tops = lp.get("top_logprobs")
    values = values if isinstance(values, list) else []
    tops = tops if isinstance(tops, list) else []
    tokens = []
    for i, name in enumerate(names if isinstance(names, list) else []):
        top = tops[i] if i < len(tops) else None
        alternatives = [
            {"token": str(k), "logprob": _logprob(v)}
            for k, v in (top.items() if isinstance(top, dict) else ())
        ]
        tokens.append(
            {
                "token": name if isinstance(name, str) else "" if name is None else str(name),
                "logprob": _logprob(values[i] if i < len(values) else None),
                "top": _ranked(alternatives),
            }
        )
    return tokens


def _logprobs_event(raw: Any, index: int) -> Logprobs | None:
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("content"), list):
        tokens = _chat_logprob_tokens(raw["content"])
    elif isinstance(raw.get("tokens"), list):
        tokens = _legacy_logprob_tokens(raw)
    else:
        return None
    return Logprobs(choice=index, tokens=tokens) if tokens else None
