"""What leaves the client is cleaned: echoed secrets redacted, NUL characters replaced."""

from __future__ import annotations

from .endpoint import Endpoint
from .events import Event, ReasoningDelta, TextDelta, ToolCallDelta, UpstreamError


def _no_nul(text: str) -> str:
    # PostgreSQL refuses U+0000 in text and jsonb; nobody needs it in chat text.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def redact_text(text: str | None, endpoint: Endpoint) -> str | None:
    """An endpoint that echoes the key or a header value back must not show it."""
    if not text:
        return text
    secrets = [endpoint.api_key, *endpoint.headers.values()]
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return _no_nul(text)


def _clean_error(error: UpstreamError, endpoint: Endpoint) -> UpstreamError:
    error.message = redact_text(error.message, endpoint) or ""
    error.body = redact_text(error.body, endpoint)
    return error


def _clean(event: Event, endpoint: Endpoint) -> Event:
    if isinstance(event, TextDelta | ReasoningDelta):
        event.text = _no_nul(event.text)
    elif isinstance(event, ToolCallDelta):
        event.arguments = _no_nul(event.arguments)
        if event.name:
            event.name = _no_nul(event.name)
    elif isinstance(event, UpstreamError):
        _clean_error(event, endpoint)
    return event
