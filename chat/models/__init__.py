"""The data: endpoints, conversations, lanes, messages, and account records."""

from __future__ import annotations

from chat.models.account import LiveSocket, LoginFailure, Vote
from chat.models.conversation import (
    SYSTEM_PROMPT_MAX_CHARS,
    Conversation,
    Lane,
    system_prompt_problem,
)
from chat.models.message import Message, MessageQuerySet
from chat.models.profile import EndpointProfile, Preset

__all__ = [
    "EndpointProfile",
    "Preset",
    "SYSTEM_PROMPT_MAX_CHARS",
    "system_prompt_problem",
    "Conversation",
    "Lane",
    "MessageQuerySet",
    "Message",
    "Vote",
    "LoginFailure",
    "LiveSocket",
]
