"""The client for OpenAI-compatible endpoints: the import point for callers.

Everything that talks HTTP to a provider lives in this package and turns what comes back
(event streams, JSON, error pages, dropped connections, silence) into the typed events of
``chat.upstream.events``.  Failures are reported as ``UpstreamError`` events (streaming) or
``UpstreamFailure`` exceptions (one-shot calls), never as raw httpx exceptions.

The work is split by responsibility; this module re-exports what callers use:

- ``endpoint``: ``Endpoint``, ``api_url``, request headers and timeouts;
- ``pool``: the pooled httpx client per event loop, the orphaned-connection sweep, and
  the in-process transport for the host ``fake.invalid`` (served by ``chat.fake_upstream``,
  imported only when a client is built);
- ``errors``: ``UpstreamFailure`` and the mapping of HTTP answers and httpx exceptions;
- ``bodies``: bounded body reads and the bounded raw capture (``raw=``);
- ``parse``, ``logprobs``, ``usage``: provider JSON to typed events, usage per choice;
- ``secrets``: ``Secrets``, echoed secrets redacted (and NUL characters replaced);
- ``streaming``: ``stream_chat``; ``calls``: ``chat_once``, ``list_models``.
"""

from __future__ import annotations

from .bodies import RAW_MAX_BYTES, RAW_MAX_ENTRIES, RAW_TRUNCATED, _decode
from .calls import _fetch, _model_ids, chat_once, list_models
from .endpoint import REASONING_FIELDS, Endpoint, api_url
from .errors import UpstreamFailure
from .parse import _content_text
from .pool import (
    FAKE_HOST,
    _clients,
    _stream,
    aclose_client,
    fake_app,
    get_client,
    reclaim_orphaned_connections,
    set_transport,
)
from .secrets import REDACTED, Secrets
from .streaming import stream_chat

__all__ = [
    "FAKE_HOST",
    "RAW_MAX_BYTES",
    "RAW_MAX_ENTRIES",
    "RAW_TRUNCATED",
    "REDACTED",
    "REASONING_FIELDS",
    "Endpoint",
    "Secrets",
    "UpstreamFailure",
    "_clients",
    "_content_text",
    "_decode",
    "_fetch",
    "_model_ids",
    "_stream",
    "aclose_client",
    "api_url",
    "chat_once",
    "fake_app",
    "get_client",
    "list_models",
    "reclaim_orphaned_connections",
    "set_transport",
    "stream_chat",
]
