"""The endpoint URL guard (chat/upstream/netguard.py), with a fake resolver: no real DNS.

Every blocked URL must give an ``UpstreamError`` of type ``blocked_address`` naming the
reason, and no connection attempt at all (a recording network backend sees every one).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

import httpcore
import pytest

from chat.upstream import (
    Endpoint,
    TextDelta,
    UpstreamError,
    UpstreamFailure,
    chat_once,
    get_client,
    list_models,
    netguard,
    stream_chat,
)
from tests.faults.catalogue import ok_stream
from tests.faults.rawserver import RawServer

PUBLIC_IP = "93.184.215.14"
FAST = '@fake {"tps": 0, "ttft_ms": 0}'  # for the in-process demo endpoint
BODY = {"model": "demo", "messages": [{"role": "user", "content": "hi\n" + FAST}], "stream": True}


# --------------------------------------------------------------------------- fixtures


class FakeDNS:
    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.calls: list[str] = []

    def set(self, host: str, *answers: list[str]) -> None:
        """Successive lookups of ``host`` get successive answers (the last one repeats)."""
        self.answers[host] = list(answers)

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.answers.get(host.lower().removesuffix("."))  # as DNS does
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class _RecordedStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream, recorder: Recorder) -> None:
        self.stream = stream
        self.recorder = recorder

    async def read(self, max_bytes, timeout=None):
        return await self.stream.read(max_bytes, timeout)

    async def write(self, buffer, timeout=None):
        await self.stream.write(buffer, timeout)

    async def aclose(self):
        await self.stream.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        self.recorder.tls.append(server_hostname)
        raise httpcore.ConnectError("TLS is not spoken by the test server")

    def get_extra_info(self, info):
        return self.stream.get_extra_info(info)


class Recorder(httpcore.AsyncNetworkBackend):
    """The guard's inner backend: records each connect; ``route`` plays the network by
    sending a public address to the local test server."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.tls: list[str | None] = []
        self.route: dict[str, str] = {}
        self.real = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.calls.append((host, port))
        target = self.route.get(host, host)
        stream = await self.real.connect_tcp(
            target, port, timeout=timeout, local_address=local_address
        )
        return _RecordedStream(stream, self)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds):
        await self.real.sleep(seconds)


@pytest.fixture
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(netguard, "resolve", fake.resolve)
    real = socket.getaddrinfo

    def no_names(host, *args, **kwargs):
        # Only IP literals may reach the system resolver in these tests.
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"real DNS is off in tests ({name})") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_names)
    return fake


@pytest.fixture
def net(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(netguard, "inner_backend", lambda: recorder)
    return recorder


@pytest.fixture
def guard(settings, dns, net):
    settings.ENDPOINT_BLOCK_PRIVATE = True
    settings.ENDPOINT_ALLOWED_HOSTS = []
    return settings


async def events_of(url: str, **endpoint) -> list:
    out = []
    async with contextlib.aclosing(stream_chat(Endpoint(base_url=url, **endpoint), BODY)) as s:
        async for event in s:
            out.append(event)
    return out


async def the_error(url: str, **endpoint) -> UpstreamError:
    events = await events_of(url, **endpoint)
    errors = [e for e in events if isinstance(e, UpstreamError)]
    assert len(errors) == 1, events
    return errors[0]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.0x0.0x0.0x1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("169.254.169.254.", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_every_spelling_of_an_ip_is_recognised(host, address):
    assert netguard.parse_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["localhost", "example.com", "256.1.1.1", "1.2.3.4.5", "08", "1.2.3.4x", "a.1", ""]
)
def test_names_are_not_mistaken_for_ips(host):
    assert netguard.parse_ip(host) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("0.0.0.0", "this network"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a00:1::", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "IETF"),
        ("100::1", "discard"),
        ("4000::1", "reserved"),
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address, reason):
    problem = netguard.address_problem(ipaddress.ip_address(address))
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", PUBLIC_IP, "100.128.0.1", "172.32.0.1", "2606:4700:4700::1111",
     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)  # fmt: skip
def test_public_addresses_pass(address):
    assert netguard.address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("api.openai.com", ["api.openai.com"], True),
        ("API.OpenAI.com.", ["api.openai.com"], True),
        ("api.openai.com", ["openai.com"], False),
        ("api.openai.com", [".openai.com"], True),
        ("openai.com", [".openai.com"], True),
        ("evilopenai.com", [".openai.com"], False),
        ("api.openai.com.evil.test", [".openai.com"], False),
        ("10.0.0.5", ["10.0.0.5"], True),
        ("0xa000005", ["10.0.0.5"], True),
        ("::1", ["[::1]"], True),
        ("other.test", [], False),
    ],
)
def test_allowed_hosts_matching(host, allowed, ok):
    assert netguard.host_allowed(host, allowed) is ok


# --------------------------------------------------------------------------- blocking


async def test_without_the_guard_a_loopback_endpoint_is_reached(settings, raw_server, net):
    """The control: the same request the guard blocks below does connect when it is off."""
    settings.ENDPOINT_BLOCK_PRIVATE = False
    raw_server.handler = ok_stream
    events = await events_of(raw_server.url)
    assert any(isinstance(e, TextDelta) for e in events)
    assert raw_server.connections == 1
    assert not isinstance(get_client()._transport._pool._network_backend, netguard.GuardedBackend)


LOOPBACK_SPELLINGS = [
    "127.0.0.1", "2130706433", "0x7f.1", "0x7f000001", "017700000001", "127.1", "0",
    "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "localhost",
    "LocalHost.", "loop.example.test",
]  # fmt: skip


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_the_local_server_is_unreachable_however_it_is_spelled(
    host, guard, dns, net, raw_server
):
    raw_server.handler = ok_stream
    dns.set("localhost", ["127.0.0.1", "::1"])
    dns.set("loop.example.test", [PUBLIC_IP, "127.0.0.1"])  # one bad answer is enough
    error = await the_error(f"http://{host}:{raw_server.port}/v1")
    assert error.type == "blocked_address" and error.status is None
    assert error.message.startswith("Blocked: ")
    assert "this network" in error.message if host == "0" else "loopback" in error.message
    assert "ENDPOINT_BLOCK_PRIVATE" in error.message
    assert not error.retryable
    assert net.calls == [] and raw_server.connections == 0
    if netguard.parse_ip(host.lower()) is not None:
        assert dns.calls == [], "an IP literal is never sent to the resolver"
    else:
        assert host.lower().rstrip(".") in error.message


BLOCKED_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
    ("http://2852039166/", "cloud metadata"),
    ("https://10.1.2.3/v1", "private"),
    ("http://172.16.0.10:8000/v1", "private"),
    ("http://192.168.1.20:11434/v1", "private"),
    ("http://100.64.3.4/v1", "carrier-grade NAT"),
    ("http://[fe80::1%25eth0]:8080/v1", "link-local"),
    ("http://[fc00::1]/v1", "unique local"),
    ("http://224.0.0.1/v1", "multicast"),
    ("http://240.1.2.3/v1", "reserved"),
    ("http://[2002:c0a8:101::1]/v1", "private"),
    ("http://intranet.example.test/v1", "private"),
    ("http://rebound.example.test/v1", "private"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED_URLS)
async def test_private_and_metadata_endpoints_are_blocked(url, reason, guard, dns, net):
    dns.set("metadata.google.internal", ["169.254.169.254"])
    dns.set("intranet.example.test", ["10.20.30.40"])
    dns.set("rebound.example.test", ["::ffff:192.168.0.1"])
    error = await the_error(url)
    assert error.type == "blocked_address", error
    assert reason in error.message
    assert net.calls == []


async def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected(
    guard, dns, net, raw_server
):
    """DNS rebinding: the name is public when checked and loopback a moment later; the
    connection still goes to the address that was checked, with the Host header kept."""
    raw_server.handler = ok_stream
    dns.set("api.example.test", [PUBLIC_IP], ["127.0.0.1"])
    net.route[PUBLIC_IP] = "127.0.0.1"  # "the internet" is the test server
    events = await events_of(f"http://api.example.test:{raw_server.port}/v1")
    assert any(isinstance(e, TextDelta) for e in events), events
    assert dns.calls == ["api.example.test"]
    assert net.calls == [(PUBLIC_IP, raw_server.port)]
    assert raw_server.requests[0].headers["host"] == f"api.example.test:{raw_server.port}"
    # A new connection resolves again, and this time the answer is refused.
    await get_client().aclose()
    error = await the_error(f"http://api.example.test:{raw_server.port}/v1")
    assert error.type == "blocked_address" and "resolves to 127.0.0.1" in error.message
    assert net.calls == [(PUBLIC_IP, raw_server.port)]


async def test_tls_keeps_the_host_name_for_sni_and_certificates(guard, dns, net, raw_server):
    raw_server.handler = ok_stream
    dns.set("secure.example.test", [PUBLIC_IP])
    net.route[PUBLIC_IP] = "127.0.0.1"
    error = await the_error(f"https://secure.example.test:{raw_server.port}/v1")
    assert net.calls == [(PUBLIC_IP, raw_server.port)]
    assert net.tls == ["secure.example.test"]
    assert error.type == "connection_error"


async def test_an_unresolvable_name_is_a_connection_error(guard, dns, net, monkeypatch):
    error = await the_error("http://nowhere.example.test/v1")
    assert error.type == "connection_error"
    assert "Could not resolve nowhere.example.test" in error.message

    async def unencodable(host, port):
        raise UnicodeError("label too long")  # what getaddrinfo's IDNA step can raise

    monkeypatch.setattr(netguard, "resolve", unencodable)
    error = await the_error("http://odd.example.test/v1")
    assert error.type == "connection_error" and "label too long" in error.message
    assert net.calls == []


async def test_a_hanging_resolver_is_a_connect_timeout(guard, dns, net, monkeypatch):
    import asyncio

    async def hang(host, port):
        await asyncio.sleep(30)

    monkeypatch.setattr(netguard, "resolve", hang)
    error = await the_error("http://slow-dns.example.test/v1", connect_timeout=0.2)
    assert error.type == "timeout" and "connecting" in error.message


async def test_the_demo_host_stays_allowed(guard, dns, net, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["api.openai.com"]
    events = await events_of("http://fake.invalid/v1")
    assert any(isinstance(e, TextDelta) for e in events)
    assert dns.calls == [] and net.calls == []


async def test_one_shot_calls_are_guarded_too(guard, dns, net):
    endpoint = Endpoint(base_url="http://169.254.169.254/v1")
    for call in (list_models(endpoint), chat_once(endpoint, BODY)):
        with pytest.raises(UpstreamFailure) as caught:
            await call
        assert caught.value.error.type == "blocked_address"
        assert "cloud metadata" in caught.value.error.message
    assert net.calls == []


async def test_turning_the_guard_on_applies_to_the_next_request(settings, dns, net, raw_server):
    raw_server.handler = ok_stream
    settings.ENDPOINT_BLOCK_PRIVATE = False
    assert not (await the_error_or_none(raw_server.url))
    settings.ENDPOINT_BLOCK_PRIVATE = True
    error = await the_error(raw_server.url)
    assert error.type == "blocked_address"
    assert raw_server.connections == 1


async def the_error_or_none(url: str) -> UpstreamError | None:
    errors = [e for e in await events_of(url) if isinstance(e, UpstreamError)]
    return errors[0] if errors else None


# --------------------------------------------------------------------------- allow-list


async def test_only_allowed_hosts_are_reached(settings, dns, net, raw_server):
    settings.ENDPOINT_BLOCK_PRIVATE = False
    settings.ENDPOINT_ALLOWED_HOSTS = ["api.example.test", ".corp.example"]
    raw_server.handler = ok_stream
    dns.set("llm.corp.example", ["127.0.0.1"])
    for host in ("other.example.test", "evilcorp.example", "api.example.test.evil.test",
                 "127.0.0.1"):  # fmt: skip
        error = await the_error(f"http://{host}:{raw_server.port}/v1")
        assert error.type == "blocked_address"
        assert f"{host} is not one of the allowed endpoint hosts" in error.message
    assert dns.calls == [] and net.calls == []
    # An allowed name on the private network is fine when only the host list is set...
    assert await the_error_or_none(f"http://llm.corp.example:{raw_server.port}/v1") is None
    assert net.calls == [("127.0.0.1", raw_server.port)]
    # ...and refused once private addresses are blocked as well.
    settings.ENDPOINT_BLOCK_PRIVATE = True
    error = await the_error(f"http://llm.corp.example:{raw_server.port}/v1")
    assert error.type == "blocked_address" and "loopback" in error.message


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("guarded", [False, True], ids=["guard-off", "guard-on"])
async def test_redirects_are_never_followed(settings, dns, net, raw_server, status, guarded):
    settings.ENDPOINT_ALLOWED_HOSTS = ["api.example.test"] if guarded else []
    dns.set("api.example.test", [PUBLIC_IP])
    net.route[PUBLIC_IP] = "127.0.0.1"
    target = await RawServer(handler=ok_stream).start()
    try:
        location = f"http://127.0.0.1:{target.port}/v1/chat/completions"

        async def redirect(req, conn):
            await conn.respond(status, "", {"Location": location})
            return True

        raw_server.handler = redirect
        host = "api.example.test" if guarded else "127.0.0.1"
        url = f"http://{host}:{raw_server.port}/v1"
        error = await the_error(url)
        assert error.status == status
        assert f"redirected to {location}" in error.message
        with pytest.raises(UpstreamFailure) as caught:
            await list_models(Endpoint(base_url=url))
        assert caught.value.error.status == status
        assert target.connections == 0
        assert get_client().follow_redirects is False
    finally:
        await target.close()


# --------------------------------------------------------------------------- the app


@pytest.mark.django_db(transaction=True)
async def test_a_run_to_a_metadata_endpoint_saves_the_reason(guard, net, owner):
    from tests.faults.runner import (
        connect,
        last_answer,
        make_conversation,
        make_profile,
        send,
        until_done,
    )

    profile = await make_profile(owner, base_url="http://169.254.169.254/latest")
    conversation = await make_conversation(owner, profile)
    comm = await connect(owner, conversation)
    await send(comm, "What is my instance role?")
    frames = await until_done(comm)
    await comm.disconnect()
    answer = await last_answer(conversation)
    assert answer.status == "error" and answer.content == ""
    assert answer.error["type"] == "blocked_address"
    assert "169.254.169.254 is a cloud metadata address" in answer.error["message"]
    assert "blocked_address" in frames[-1] and "cloud metadata" in frames[-1]
    assert net.calls == []


@pytest.mark.django_db
def test_test_connection_and_fetch_models_show_the_block(guard, net, owner, client):
    from django.urls import reverse

    from chat.models import EndpointProfile

    profile = EndpointProfile(owner=owner, name="Intranet", base_url="http://10.0.0.8:8000/v1")
    profile.default_model = "llama"
    profile.save()
    client.force_login(owner)
    for name in ("chat:endpoint_test", "chat:endpoint_models"):
        response = client.post(reverse(name, args=[profile.pk]))
        assert response.status_code == 200
        text = response.content.decode()
        assert "Blocked: 10.0.0.8 is a private address" in text
    assert net.calls == []
