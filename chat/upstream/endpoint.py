"""An endpoint's settings and what a request to it is made of (URL, headers, timeouts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

import httpx

from .reading import ACCEPT_ENCODING
from .secrets import Secrets


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    # Secrets stay out of repr() so an Endpoint can be logged.
    api_key: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 10
    first_byte_timeout: float = 120
    idle_timeout: float = 60
    # Which delta field carries reasoning text: "auto" (reasoning_content, else reasoning),
    # or one of them only, for an endpoint that sends the other for something else.
    reasoning_field: str = "auto"

    @cached_property
    def secrets(self) -> Secrets:
        """What this endpoint must never be shown echoing (chat.upstream.secrets); built
        once per Endpoint (a frozen dataclass keeps its cached value in ``__dict__``)."""
        return Secrets([self.api_key, *self.headers.values()])


REASONING_FIELDS = ("reasoning_content", "reasoning")


def api_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between; a query on the base is kept."""
    parts = urlsplit(base_url.strip())
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, parts.query, ""))


def _headers(endpoint: Endpoint, accept: str) -> httpx.Headers:
    # Only codings ``reading`` inflates in bounded steps (httpx would also offer br and
    # zstd when their packages are installed, and inflate each chunk whole).
    headers = httpx.Headers({"accept": accept, "accept-encoding": ACCEPT_ENCODING})
    if endpoint.api_key:
        headers["authorization"] = f"Bearer {endpoint.api_key}"
    for key, value in endpoint.headers.items():
        headers[key] = value  # case-insensitive: a custom Authorization replaces ours
    return headers


def _timeouts(endpoint: Endpoint) -> httpx.Timeout:
    return httpx.Timeout(
        connect=endpoint.connect_timeout, read=None, write=None, pool=endpoint.connect_timeout
    )


def _where(url: str) -> str:
    """The host (and port) of ``url``, never its credentials, path or query."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the endpoint"
    if not host:
        return "the endpoint"
    return f"{host}:{port}" if port else host


def _seconds(value: float) -> str:
    return f"{value:g}"
