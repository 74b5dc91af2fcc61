"""The OpenAI-compatible upstream client and the typed events it produces."""

from __future__ import annotations

from .client import (
    Endpoint,
    UpstreamFailure,
    aclose_client,
    api_url,
    chat_once,
    fake_app,
    get_client,
    list_models,
    set_transport,
    stream_chat,
)
from .events import (
    Event,
    Finish,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
)

__all__ = [
    "Endpoint",
    "Event",
    "Finish",
    "Logprobs",
    "ReasoningDelta",
    "TextDelta",
    "ToolCallDelta",
    "UpstreamError",
    "UpstreamFailure",
    "Usage",
    "aclose_client",
    "api_url",
    "chat_once",
    "fake_app",
    "get_client",
    "list_models",
    "set_transport",
    "stream_chat",
]
