"""The websocket accepts exactly the origins Django's CSRF check accepts a POST from: its
own scheme, host and port, and CSRF_TRUSTED_ORIGINS.

Before: Channels' AllowedHostsOriginValidator compared only the host name, so with the
victim's cookie a page on another port or scheme of the same host (``http://127.0.0.1:9942``,
``https://localhost``, ``http://[::1]:9942``) got a socket and could send as them."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from playground.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def session_cookie() -> bytes:
    user, _ = get_user_model().objects.get_or_create(username="victim")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def socket_opens(
    path: str, *, host: str, origin: str | None, scheme: str = "ws", extra=()
) -> bool:
    headers = [(b"host", host.encode()), (b"cookie", await session_cookie()), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    comm.scope["scheme"] = scheme
    connected, _ = await comm.connect()
    await comm.disconnect()
    return connected


CASES = [
    # (the socket's Host, its scheme, the Origin, accepted?)
    ("127.0.0.1:8000", "ws", "http://127.0.0.1:8000", True),
    ("localhost:8000", "ws", "http://localhost:8000", True),
    ("[::1]:8000", "ws", "http://[::1]:8000", True),
    ("localhost", "ws", "http://localhost", True),
    ("localhost", "wss", "https://localhost", True),
    # Default ports are the same origin, whichever side spells them out.
    ("localhost", "ws", "http://localhost:80", True),
    ("localhost:80", "ws", "http://localhost", True),
    ("localhost:443", "wss", "https://localhost", True),
    # Scheme and host are case-insensitive (RFC 6454).
    ("localhost:8000", "ws", "HTTP://LocalHost:8000", True),
    # Another port or scheme of the same host is another site.
    ("127.0.0.1:8000", "ws", "http://127.0.0.1:9942", False),
    ("localhost:8000", "ws", "http://localhost:9942", False),
    ("127.0.0.1:8000", "ws", "https://127.0.0.1:8000", False),
    ("localhost", "wss", "http://localhost", False),
    ("[::1]:8000", "ws", "http://[::1]:9942", False),
    ("localhost", "ws", "http://localhost:443", False),
    # Another host, or one that only looks like it.
    ("127.0.0.1:8000", "ws", "http://localhost:8000", False),
    ("127.0.0.1:8000", "ws", "http://127.0.0.1.evil.com:8000", False),
    ("localhost", "ws", "http://evil-localhost", False),
    ("localhost", "ws", "http://localhost.evil.com", False),
    ("localhost", "ws", "http://evil.com", False),
    # Not origins at all.
    ("localhost", "ws", "null", False),
    ("localhost", "ws", None, False),
    ("localhost", "ws", "", False),
    ("localhost", "ws", "http://localhost/", False),
    ("localhost", "ws", "http://user@localhost", False),
    ("localhost", "ws", "file://", False),
    ("localhost", "ws", "http://localhost:99999", False),
    # A Host that ALLOWED_HOSTS refuses, even with the matching Origin.
    ("evil.com", "ws", "http://evil.com", False),
]


@pytest.mark.parametrize(("host", "scheme", "origin", "accepted"), CASES)
@pytest.mark.parametrize("path", ["/ws/sidebar/", "/ws/c/00000000-0000-0000-0000-000000000000/"])
async def test_a_socket_opens_only_from_its_own_origin(path, host, scheme, origin, accepted):
    opened = await socket_opens(path, host=host, scheme=scheme, origin=origin)
    if path.startswith("/ws/c/") and accepted:
        # Past the origin check, a conversation that is not yours closes with 4404.
        assert not opened
        return
    assert opened is accepted


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://play.example.com", True),
        ("https://PLAY.example.com:443", True),
        ("http://play.example.com", False),
        ("https://play.example.com:8443", False),
        ("https://a.corp.example.net", True),
        ("https://corp.example.net", True),
        ("https://a.b.corp.example.net", True),
        ("http://a.corp.example.net", False),
        ("https://evilcorp.example.net", False),
        ("https://corp.example.net.evil.com", False),
    ],
)
async def test_trusted_origins_open_a_socket_too(settings, origin, accepted):
    settings.CSRF_TRUSTED_ORIGINS = ["https://play.example.com", "https://*.corp.example.net"]
    assert await socket_opens("/ws/sidebar/", host="localhost:8000", origin=origin) is accepted


async def test_behind_an_https_proxy_the_forwarded_scheme_counts(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = [(b"x-forwarded-proto", b"https")]
    assert await socket_opens(
        "/ws/sidebar/", host="localhost", origin="https://localhost", extra=proto
    )
    assert not await socket_opens(
        "/ws/sidebar/", host="localhost", origin="http://localhost", extra=proto
    )
    # Without the header, the socket's own scheme.
    assert await socket_opens("/ws/sidebar/", host="localhost", origin="http://localhost")


async def test_a_forwarded_host_counts_only_when_django_uses_it(settings):
    forwarded = [(b"x-forwarded-host", b"127.0.0.1:9000")]
    assert not await socket_opens(
        "/ws/sidebar/", host="localhost", origin="http://127.0.0.1:9000", extra=forwarded
    )
    settings.USE_X_FORWARDED_HOST = True
    assert await socket_opens(
        "/ws/sidebar/", host="localhost", origin="http://127.0.0.1:9000", extra=forwarded
    )
