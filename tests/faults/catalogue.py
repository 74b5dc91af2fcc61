"""The fault matrix: every way an endpoint (or the way to it) can fail, once.

Each fault says how the raw server (or the in-process fake, or the network) misbehaves,
and what must be kept: the HTTP status, the provider's own message/type/code, and the
text that arrived before the failure.  The same catalogue drives ``stream_chat`` directly
and whole runs through the websocket consumer.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .rawserver import Conn, RawServer, Request, closed_port, delta

# Short, so timeouts are hit quickly; the generous values keep the others out of the way.
SHORT = 0.4
TIMEOUTS = {"connect_timeout": 5.0, "first_byte_timeout": 5.0, "idle_timeout": 5.0}

PARTIAL = ["Partial ", "answer ", "kept"]
PARTIAL_TEXT = "".join(PARTIAL)
MARKER = re.compile(r"FAULT:([a-z0-9_]+)")


@dataclass(frozen=True)
class Fault:
    name: str
    # How the raw server answers; None when the fault needs no server (or uses the fake).
    serve: Callable[[Request, Conn], Awaitable[bool]] | None = None
    # The endpoint's base URL; None means the raw server.
    base_url: Callable[[RawServer], str] | None = None
    timeouts: dict[str, float] = field(default_factory=dict)
    # What the saved error must say.
    status: int | None = None
    type: str | None = None
    code: str | None = None
    message: str = ""
    body: str | None = None  # a substring of the kept body snippet
    partial: str = ""
    retryable: bool = False
    # The stream ends without an UpstreamError (the run turns it into one).
    silent_end: bool = False
    fake: str = ""  # an @fake directive for the in-process fake endpoint

    def endpoint_kwargs(self) -> dict[str, float]:
        return {**TIMEOUTS, **self.timeouts}

    def prompt(self) -> str:
        if self.fake:
            return f"FAULT:{self.name}\n@fake {self.fake}"
        return f"FAULT:{self.name}"


# --------------------------------------------------------------------------- server side


async def _stream_partial(conn: Conn) -> None:
    await conn.sse_head()
    for text in PARTIAL:
        await conn.sse(delta(text))


async def _silence_before_headers(req: Request, conn: Conn) -> bool:
    await conn.silence()
    return False


async def _silence_mid_stream(req: Request, conn: Conn) -> bool:
    await _stream_partial(conn)
    await conn.silence()
    return False


def _json_error(status: int, error: dict[str, Any], headers: dict[str, str] | None = None):
    async def serve(req: Request, conn: Conn) -> bool:
        await conn.json(status, {"error": error}, headers)
        return True

    return serve


async def _plain_500(req: Request, conn: Conn) -> bool:
    await conn.respond(500, "Internal Server Error", {"Content-Type": "text/plain"})
    return True


HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "</body>\r\n</html>\r\n"
)


async def _html_502(req: Request, conn: Conn) -> bool:
    await conn.respond(502, HTML_502, {"Content-Type": "text/html"})
    return True


async def _malformed_chunk(req: Request, conn: Conn) -> bool:
    await _stream_partial(conn)
    await conn.chunk(b'data: {"choices": [{"index": 0, "delta": {"content": "x"\n\n')
    await conn.sse("[DONE]")
    await conn.end()
    return True


async def _error_mid_stream(req: Request, conn: Conn) -> bool:
    await _stream_partial(conn)
    await conn.sse(
        {
            "error": {
                "message": "Model overloaded mid-answer",
                "type": "server_error",
                "code": "overloaded",
            }
        }
    )
    await conn.end()
    return True


async def _end_without_done(req: Request, conn: Conn) -> bool:
    # A complete HTTP response whose event stream just stops: no finish_reason, no [DONE].
    await _stream_partial(conn)
    await conn.end()
    return True


async def _cut_mid_body(req: Request, conn: Conn) -> bool:
    # The socket closes (FIN) before the chunked body's last chunk, once the client has
    # read the partial text (so the cut comes mid-body for it, not with the text).
    await _stream_partial(conn)
    await conn.read_by_client()
    return False


async def _reset_mid_stream(req: Request, conn: Conn) -> bool:
    await _stream_partial(conn)
    # An RST can discard what the client has not read yet: reset only once it has read
    # the partial text, which must be kept (waited for, not a guess at how long it takes).
    await conn.read_by_client()
    conn.reset()
    return False


async def _garbage(req: Request, conn: Conn) -> bool:
    await conn.raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    return False


async def ok_stream(req: Request, conn: Conn, text: str = "Recovered fine") -> bool:
    await conn.sse_head()
    for word in text.split(" "):
        await conn.sse(delta(word + " "))
    await conn.sse(delta("", "stop"))
    await conn.sse("[DONE]")
    await conn.end()
    return True


def _refused(server: RawServer) -> str:
    return f"http://127.0.0.1:{closed_port()}/v1"


def _unresolvable(server: RawServer) -> str:
    return "http://no-such-endpoint.invalid/v1"


FAULTS: tuple[Fault, ...] = (
    Fault("refused", base_url=_refused, type="connection_error",
          message="Could not connect to 127.0.0.1:", retryable=True),
    Fault("dns_failure", base_url=_unresolvable, type="connection_error",
          message="Could not connect to no-such-endpoint.invalid", retryable=True),
    Fault("no_headers", serve=_silence_before_headers, timeouts={"first_byte_timeout": SHORT},
          type="timeout", message=f"No response within {SHORT:g} s", retryable=True),
    Fault("idle_mid_stream", serve=_silence_mid_stream, timeouts={"idle_timeout": SHORT},
          type="timeout", message=f"Stream idle for more than {SHORT:g} s",
          partial=PARTIAL_TEXT, retryable=True),
    Fault("http_401", serve=_json_error(401, {
              "message": "Incorrect API key provided: sk-…abcd.",
              "type": "invalid_request_error", "code": "invalid_api_key"}),
          status=401, type="invalid_request_error", code="invalid_api_key",
          message="Incorrect API key provided"),
    Fault("http_404_model", serve=_json_error(404, {
              "message": "The model `gpt-9` does not exist or you do not have access to it.",
              "type": "invalid_request_error", "param": "model", "code": "model_not_found"}),
          status=404, type="invalid_request_error", code="model_not_found",
          message="The model `gpt-9` does not exist"),
    Fault("http_429", serve=_json_error(429, {
              "message": "Rate limit reached for gpt-4o. Please try again in 1s.",
              "type": "requests", "code": "rate_limit_exceeded"}, {"Retry-After": "1"}),
          status=429, type="requests", code="rate_limit_exceeded",
          message="Rate limit reached", retryable=True),
    Fault("http_500", serve=_plain_500, status=500, message="HTTP 500 Internal Server Error",
          body="Internal Server Error"),
    Fault("http_502_json", serve=_json_error(502, {
              "message": "Upstream provider unreachable", "type": "server_error",
              "code": "bad_gateway"}),
          status=502, type="server_error", code="bad_gateway",
          message="Upstream provider unreachable", retryable=True),
    Fault("http_503_json", serve=_json_error(503, {
              "message": "The engine is currently overloaded, please try again later",
              "type": "server_error", "code": None}),
          status=503, type="server_error", message="currently overloaded", retryable=True),
    Fault("html_error", serve=_html_502, status=502, message="HTTP 502 Bad Gateway",
          body="502 Bad Gateway nginx/1.25.3", retryable=True),
    Fault("malformed_chunk", serve=_malformed_chunk, message="Malformed chunk",
          partial=PARTIAL_TEXT),
    Fault("error_mid_stream", serve=_error_mid_stream, type="server_error", code="overloaded",
          message="Model overloaded mid-answer", partial=PARTIAL_TEXT),
    Fault("end_without_done", serve=_end_without_done, partial=PARTIAL_TEXT,
          silent_end=True, message="ended before"),
    Fault("cut_mid_body", serve=_cut_mid_body, type="connection_error",
          message="was lost", partial=PARTIAL_TEXT, retryable=True),
    Fault("reset_mid_stream", serve=_reset_mid_stream, type="connection_error",
          message="was lost", partial=PARTIAL_TEXT, retryable=True),
    Fault("not_http", serve=_garbage, type="connection_error", message="was lost",
          retryable=True),
    # The same families from the in-process fake endpoint (@fake directives).
    Fault("fake_401", fake='{"status": 401}', status=401, code="invalid_api_key",
          message="Incorrect API key provided"),
    Fault("fake_404", fake='{"status": 404, "message": "No such model here"}', status=404,
          message="No such model here"),
    Fault("fake_429", fake='{"status": 429}', status=429, code="rate_limit_exceeded",
          message="Rate limit reached", retryable=True),
    Fault("fake_503", fake='{"status": 503, "message": "Overloaded, try later"}', status=503,
          type="server_error", message="Overloaded, try later", retryable=True),
    Fault("fake_html", fake='{"html_error": true}', status=502, message="HTTP 502 Bad Gateway",
          body="502 Bad Gateway", retryable=True),
    Fault("fake_slow_start", fake='{"ttft_ms": 3000, "tokens": 5}',
          timeouts={"first_byte_timeout": SHORT}, type="timeout",
          message=f"No response within {SHORT:g} s", retryable=True),
    Fault("fake_stall", fake='{"reply": "one two three four five", "tps": 2, "ttft_ms": 0}',
          timeouts={"idle_timeout": SHORT}, type="timeout",
          message=f"Stream idle for more than {SHORT:g} s", partial="one", retryable=True),
    Fault("fake_error_after", fake='{"reply": "a b c d e f", "tps": 0, "error_after": 3}',
          type="server_error", message="The server had an error", partial="a b c"),
    Fault("fake_cut", fake='{"reply": "a b c d e f", "tps": 0, "cut_after": 3}',
          partial="a b c", silent_end=True, message="ended before"),
)  # fmt: skip

BY_NAME = {f.name: f for f in FAULTS}
RAW = [f for f in FAULTS if not f.fake]
FAKE = [f for f in FAULTS if f.fake]


def base_url(fault: Fault, server: RawServer) -> str:
    if fault.fake:
        return "http://fake.invalid/v1"
    if fault.base_url is not None:
        return fault.base_url(server)
    return server.url


async def dispatch(request: Request, conn: Conn) -> bool:
    """The raw server's handler: the fault named in the last user message."""
    match = MARKER.search(request.last_user_text())
    fault = BY_NAME.get(match.group(1)) if match else None
    if fault is None or fault.serve is None:
        await conn.json(400, {"error": {"message": f"no fault in {request.path}"}})
        return True
    return await fault.serve(request, conn)


def failing_getaddrinfo(real: Callable[..., Any]) -> Callable[..., Any]:
    """socket.getaddrinfo that fails for *.invalid names (no real DNS query)."""

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    return getaddrinfo


def chat_body(fault: Fault, model: str = "demo") -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": fault.prompt()}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
