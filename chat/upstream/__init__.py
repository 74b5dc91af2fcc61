"""The OpenAI-compatible upstream client and the typed events it produces: callers import
both from here (``client.__all__`` and ``events.__all__``)."""

from __future__ import annotations

from . import client, events
from .client import *  # noqa: F403
from .events import *  # noqa: F403

__all__ = [*client.__all__, *events.__all__]
