"""``@fake`` scripting: the directive lines of a prompt and the ``x-fake`` header."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

GATE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class Directives:
    """The ``@fake`` keys; None means "not scripted"."""

    tokens: int | None = None
    tps: float | None = None
    ttft_ms: float | None = None
    reply: str | None = None
    status: int | None = None
    message: str | None = None
    html_error: bool = False
    error_after: int | None = None
    cut_after: int | None = None
    usage: bool = True
    tool_calls: list[dict[str, Any]] | None = None
    # How tool calls are streamed, to imitate real servers' deviations: "standard",
    # "no_index" (Gemini), "reuse_index" (index 0 for every call, distinct ids: Ollama),
    # "one_chunk" (each call whole in one chunk), "no_type", "legacy" (function_call).
    tool_style: str = "standard"
    # How many assistant tool-call rounds to script before answering in text.
    tool_rounds: int = 1
    finish_reason: str | None = None
    keepalive: bool = False
    # Chat: reasoning text streamed before the answer (or the tool calls), in the delta
    # field ``reasoning_field`` ("reasoning_content" like DeepSeek and vLLM, or "reasoning"
    # like OpenRouter), counted in usage as completion_tokens_details.reasoning_tokens.
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"
    # Prompt tokens reported as served from a cache (prompt_tokens_details.cached_tokens).
    cached_tokens: int | None = None
    # Stream ``hold_after`` tokens, then wait until ``POST /v1/fake/gates/<gate>`` opens the
    # gate (at most GATE_MAX_WAIT): a test decides when the answer goes on, not the clock.
    hold_after: int | None = None
    gate: str | None = None

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Directives:
        d = cls()
        casts: dict[str, Any] = {
            "tokens": int,
            "tps": float,
            "ttft_ms": float,
            "status": int,
            "error_after": int,
            "cut_after": int,
            "reply": str,
            "message": str,
            "finish_reason": str,
            "html_error": bool,
            "usage": bool,
            "keepalive": bool,
            "tool_style": str,
            "tool_rounds": int,
            "reasoning": str,
            "reasoning_field": str,
            "cached_tokens": int,
            "hold_after": int,
            "gate": str,
        }
        for key, cast in casts.items():
            # A typo in a demo script should not take the server down: skip the bad key.
            if raw.get(key) is not None:
                with contextlib.suppress(TypeError, ValueError):
                    setattr(d, key, cast(raw[key]))
        if d.gate is not None and not GATE_NAME.fullmatch(d.gate):
            d.gate = None
        if d.reasoning_field not in ("reasoning_content", "reasoning"):
            d.reasoning_field = "reasoning_content"
        calls = raw.get("tool_calls")
        if isinstance(calls, list):
            d.tool_calls = [c for c in calls if isinstance(c, dict) and c.get("name")]
        return d


_DIRECTIVE_RE = re.compile(r"^[ \t]*@fake[ \t]+(\{.*\})[ \t]*(?:\n|$)", re.MULTILINE)


def _split_directives(text: str) -> tuple[str, dict[str, Any]]:
    found: dict[str, Any] = {}
    for match in _DIRECTIVE_RE.finditer(text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(value, dict):
            found.update(value)
    return _DIRECTIVE_RE.sub("", text).strip(), found


def read_script(raw_prompt: str, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The prompt without its ``@fake`` lines, and the keys scripted (header keys win)."""
    prompt, scripted = _split_directives(raw_prompt)
    header_script = headers.get("x-fake")
    if header_script:
        try:
            extra = json.loads(header_script)
        except ValueError:
            extra = None
        if isinstance(extra, dict):
            scripted.update(extra)
    return prompt, scripted
