"""A fake OpenAI-compatible server for demos and tests.

Pure ASGI and free of Django, so the upstream client can serve it in-process (base URL
``http://fake.invalid/v1``) and ``python -m chat.fake_upstream --port 8001`` can put it on a
real port.  Replies are deterministic: the same prompt gives the same answer, which lets
tests compare a streamed reply with a non-streamed one.

A request can script the server with an ``@fake {json}`` line in the last user message or an
``x-fake: {json}`` header (header keys win); see ``Directives`` for the keys.

``FakeConfig`` switches make it behave like other servers ("personalities"); each entry of
``PERSONALITIES`` is served under its own prefix, so ``http://fake.invalid/no-tools/v1``
(or ``http://127.0.0.1:8001/no-tools/v1``) is a server without tool support.  Without a
prefix the app uses its own config.  The fake honours ``response_format`` (json_object:
a JSON object; json_schema: an instance of the schema), ``seed`` (same seed, same text;
another seed, another text), ``stop``, ``n``, logprobs and image parts; a script can add
reasoning text (``reasoning_content`` or ``reasoning`` deltas) before the answer.

Layout: ``config`` (FakeConfig, PERSONALITIES), ``text`` (reply text, tokenize),
``directives`` (``@fake`` scripting), ``params`` (request checks), ``tools`` (tool calls,
structured replies), ``logprobs``, ``plan`` (a request's answer), ``responses`` (JSON and
SSE writing), ``server`` (the ASGI app) and ``cli`` (``python -m chat.fake_upstream``).
"""

from __future__ import annotations

from .cli import main
from .config import DEFAULT_MODELS, MAX_CHOICES, MAX_LOGGED_REQUESTS, PERSONALITIES, FakeConfig
from .directives import Directives
from .logprobs import MAX_LEGACY_LOGPROBS, MAX_TOP_LOGPROBS
from .server import FakeUpstream, RequestLog, logger
from .text import generate_reply, tokenize

__all__ = [
    "DEFAULT_MODELS",
    "MAX_CHOICES",
    "MAX_LEGACY_LOGPROBS",
    "MAX_LOGGED_REQUESTS",
    "MAX_TOP_LOGPROBS",
    "PERSONALITIES",
    "Directives",
    "FakeConfig",
    "FakeUpstream",
    "RequestLog",
    "app",
    "generate_reply",
    "logger",
    "main",
    "tokenize",
]

app = FakeUpstream()
