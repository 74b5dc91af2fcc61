"""The websocket's Origin check: a socket is accepted from exactly the origins Django's
CSRF check accepts a POST from.

Channels' ``AllowedHostsOriginValidator`` compared only the Origin's host name with
``ALLOWED_HOSTS``, so a page on another port or scheme of the same host (any local dev
server on ``http://127.0.0.1:9942``) could open a socket with the victim's cookie and
send as them, while Django refused the same origin a form POST. Here the Origin must be
the socket's own origin (``ws`` -> ``http``, ``wss`` -> ``https``, plus its Host, both as
``CsrfViewMiddleware`` derives them: ``SECURE_PROXY_SSL_HEADER``,
``USE_X_FORWARDED_HOST``) or one of ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com``
included); the Host must pass ``ALLOWED_HOSTS``, as Django's ``get_host`` requires.

Origins are compared as RFC 6454 defines them: scheme, host and port, case-insensitive,
a default port (80 for http, 443 for https) the same as none. Anything that is not an
origin serialization (a path, a trailing slash, user info, ``null``) is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(raw: str) -> Origin | None:
    """(scheme, host, port) of an http(s) origin, or None for anything else."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:  # a port out of range or not a number, a broken IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in raw
        or "#" in raw
        or parts.username is not None
    ):
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _scheme(scope: dict[str, Any]) -> str:
    """http or https, as ``request.is_secure()`` would answer for this request."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header, secure = proxy
        # Django's META name HTTP_X_FORWARDED_PROTO is the header x-forwarded-proto.
        value = _header(scope, header.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def _host(scope: dict[str, Any]) -> str | None:
    """The request's host (and port) as ``request.get_host()`` finds it, None if
    ``ALLOWED_HOSTS`` refuses it."""
    host = None
    if settings.USE_X_FORWARDED_HOST:
        host = _header(scope, b"x-forwarded-host")
    if host is None:
        host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return host


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    # Browsers send Origin on every websocket handshake (the Fetch standard), so its
    # absence means a non-browser client; without it we could not tell a cross-site
    # page from our own, and refusing costs a real browser nothing.
    if raw is None:
        return False
    origin = parse_origin(raw)
    if origin is None:  # "null" (sandboxed frames, file://) and non-origins
        return False
    host = _host(scope)
    if host is None:
        return False
    if origin == parse_origin(f"{_scheme(scope)}://{host}"):
        return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in trusted:
            # As CsrfViewMiddleware: the scheme, then the netloc against ".example.com".
            parts = urlsplit(trusted)
            netloc = urlsplit(raw).netloc.lower()
            if origin[0] == parts.scheme.lower() and is_same_domain(
                netloc, parts.netloc.lstrip("*").lower()
            ):
                return True
        elif origin == parse_origin(trusted):
            return True
    return False


class OriginValidator:
    """ASGI middleware: a websocket whose Origin Django would not accept is denied
    (HTTP 403 on the handshake, as Channels' own validator does)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
