"""Checking and reading the request body: messages, limits, stop, logprobs, legacy options."""

from __future__ import annotations

from typing import Any

from .config import FakeConfig
from .errors import _Fail
from .logprobs import MAX_LEGACY_LOGPROBS, MAX_TOP_LOGPROBS


def _check_messages(messages: list[Any], cfg: FakeConfig) -> None:
    """Refuse what a stricter server refuses: a system role it lacks, image parts."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer") and role not in cfg.system_roles:
            raise _Fail(
                400,
                f"Unsupported value: 'messages[{i}].role' does not support '{role}' with "
                "this model.",
                param=f"messages[{i}].role",
                code="unsupported_value",
            )
        content = m.get("content")
        images = [
            p
            for p in (content if isinstance(content, list) else [])
            if isinstance(p, dict) and p.get("type") in ("image_url", "input_image")
        ]
        if images and not cfg.supports_images:
            raise _Fail(
                400,
                "Image input is not supported by this model.",
                param=f"messages[{i}].content",
                code="image_input_not_supported",
            )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def _positive_int(body: dict[str, Any], key: str, *, maximum: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Fail(400, f"Invalid value for '{key}': expected a positive integer.", param=key)
    if maximum is not None and value > maximum:
        raise _Fail(400, f"Invalid value for '{key}': at most {maximum}.", param=key)
    return value


def _stop_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        if len(value) > 4:
            raise _Fail(400, "'stop' accepts at most 4 sequences.", param="stop")
        return [s for s in value if s]
    raise _Fail(400, "Invalid value for 'stop': expected a string or a list.", param="stop")


def _logprobs_asked(kind: str, body: dict[str, Any]) -> int | None:
    """How many alternatives per token were asked for; None when logprobs were not.

    Chat: ``logprobs: true`` and ``top_logprobs`` 0-20; legacy completions: ``logprobs``
    0-5.
    """
    value = body.get("logprobs")
    if kind != "chat":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Fail(400, "Invalid type for 'logprobs': expected an integer.", param="logprobs")
        if not 0 <= value <= MAX_LEGACY_LOGPROBS:
            raise _Fail(
                400,
                f"Invalid value for 'logprobs': must be between 0 and {MAX_LEGACY_LOGPROBS}.",
                param="logprobs",
            )
        return value
    if value is not None and not isinstance(value, bool):
        raise _Fail(400, "Invalid type for 'logprobs': expected a boolean.", param="logprobs")
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise _Fail(
                400,
                f"Invalid value for 'top_logprobs': must be between 0 and {MAX_TOP_LOGPROBS}.",
                param="top_logprobs",
            )
        if not value:
            raise _Fail(
                400,
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true.",
                param="top_logprobs",
            )
    return (top or 0) if value else None


def _legacy_options(kind: str, body: dict[str, Any]) -> bool:
    """Check the legacy-only ``echo`` and ``suffix``; True when the prompt is echoed.

    ``suffix`` is accepted and has no effect: the answer is the text to insert, as OpenAI
    returns it (the suffix itself is never part of the answer).
    """
    if kind == "chat":
        return False
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _Fail(400, "Invalid type for 'suffix': expected a string.", param="suffix")
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise _Fail(400, "Invalid type for 'echo': expected a boolean.", param="echo")
    return bool(echo)


def _apply_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
