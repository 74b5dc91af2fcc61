from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .catalogue import dispatch, failing_getaddrinfo
from .rawserver import RawServer


@pytest_asyncio.fixture
async def fault_server() -> AsyncIterator[RawServer]:
    """The raw server, answering each request with the fault its prompt names."""
    server = await RawServer(handler=dispatch).start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(autouse=True)
def _no_real_dns(monkeypatch):
    """``*.invalid`` names fail to resolve at once, without asking a DNS server."""
    monkeypatch.setattr(socket, "getaddrinfo", failing_getaddrinfo(socket.getaddrinfo))


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users are made per test; a real password hash costs ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
