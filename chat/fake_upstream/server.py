"""The ASGI app: personality prefixes, routes, the request log and sending replies."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from .config import _PERSONALITY_PATH, MAX_LOGGED_REQUESTS, PERSONALITIES, FakeConfig
from .errors import _Fail
from .plan import plan_answer
from .responses import _json_reply, _Reply, error_reply, full_reply, stream_reply
from .responses_api import ResponseStore, responses_reply, stored_reply

# The package's name, as the log lines have always been recorded under it.
logger = logging.getLogger("chat.fake_upstream")
GATE_PATH = re.compile(r"/v1/fake/gates/([A-Za-z0-9_-]{1,64})/?")
STORED_PATH = re.compile(r"/v1/responses/([A-Za-z0-9_-]{1,200})/?")


@dataclass
class _Progress:
    started: bool = False
    tokens: int = 0


class Gates:
    """Named gates a held stream waits on (the ``hold_after``/``gate`` directives).

    Opening a gate before the stream reaches it is fine: the stream then does not stop.
    Bounded: the demo endpoint is open to every user, so old gates are forgotten."""

    MAX = 1000
    MAX_WAIT = 120.0

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}

    def _get(self, name: str) -> asyncio.Event:
        gate = self._gates.get(name)
        if gate is None:
            while len(self._gates) >= self.MAX:
                del self._gates[next(iter(self._gates))]
            gate = self._gates[name] = asyncio.Event()
        return gate

    def open(self, name: str) -> None:
        self._get(name).set()

    async def wait(self, name: str) -> None:
        try:
            await asyncio.wait_for(self._get(name).wait(), self.MAX_WAIT)
        except TimeoutError:
            logger.info("fake upstream: gate %s not opened in %g s; going on", name, self.MAX_WAIT)


class RequestLog(list):
    """The last MAX_LOGGED_REQUESTS requests, oldest first. ``total`` counts every request
    ever logged: compare it, not ``len()``, to tell whether a request was made."""

    total = 0

    def log(self, entry: dict[str, Any]) -> None:
        self.append(entry)
        self.total += 1
        del self[:-MAX_LOGGED_REQUESTS]


class FakeUpstream:
    """ASGI3 app speaking enough of the OpenAI API to demo and test the playground."""

    def __init__(self, config: FakeConfig | None = None, *, personalities: bool = True) -> None:
        self.config = config or FakeConfig()
        self.requests = RequestLog()
        self.gates = Gates()
        self.responses = ResponseStore()
        # /<personality>/v1/... is served by a sub-app with that config (same request log).
        self._personalities: dict[str, FakeUpstream] | None = {} if personalities else None

    def _personality(self, path: str) -> tuple[FakeUpstream, str] | None:
        match = _PERSONALITY_PATH.match(path)
        if self._personalities is None or match is None or match[1] not in PERSONALITIES:
            return None
        name = match[1]
        sub = self._personalities.get(name)
        if sub is None:
            sub = FakeUpstream(PERSONALITIES[name], personalities=False)
            sub.requests = self.requests
            sub.gates = self.gates
            self._personalities[name] = sub
        return sub, match[2]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        routed = self._personality(scope["path"])
        if routed is not None:
            sub, path = routed
            prefix = scope["path"][: len(scope["path"]) - len(path)]
            scope = {**scope, "path": path, "root_path": scope.get("root_path", "") + prefix}
            await sub(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        try:
            parsed: Any = json.loads(body) if body else None
            bad_json = False
        except ValueError:
            parsed, bad_json = None, True
        self.requests.log(
            {"method": scope["method"], "path": scope["path"], "headers": headers, "json": parsed}
        )
        try:
            reply = self._dispatch(scope["method"], scope["path"], headers, parsed, bad_json)
        except _Fail as fail:
            reply = self._error_reply(fail)
        await self._serve(reply, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ----------------------------------------------------------------- routing

    def _dispatch(
        self, method: str, path: str, headers: dict[str, str], body: Any, bad_json: bool
    ) -> _Reply:
        routes = {
            "/v1/models": ("GET", None),
            "/v1/chat/completions": ("POST", "chat"),
            "/v1/completions": ("POST", "completion"),
            "/v1/responses": ("POST", "responses"),
        }
        route = routes.get(path.rstrip("/") if path != "/" else path)
        gate = GATE_PATH.fullmatch(path)
        if gate is not None and method == "POST":
            self.gates.open(gate[1])
            return _json_reply(200, {"gate": gate[1], "open": True})
        stored = STORED_PATH.fullmatch(path)
        if stored is not None and method == "GET":
            return stored_reply(self.config, self.responses, stored[1])
        if route is None:
            raise _Fail(404, f"Invalid URL ({method} {path})")
        expected, kind = route
        if method != expected:
            raise _Fail(405, f"Method {method} not allowed for {path}; use {expected}.")
        if kind is None:
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "playground"}
                for m in self.config.models
            ]
            return _json_reply(200, {"object": "list", "data": data})
        if bad_json:
            raise _Fail(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            )
        if not isinstance(body, dict):
            raise _Fail(400, "The request body must be a JSON object.")
        if kind == "responses":
            return responses_reply(self.config, self.responses, body, headers)
        answer = plan_answer(self.config, kind, body, headers)
        if answer.stream:
            return stream_reply(answer)
        return full_reply(answer, self.config.error_shape)

    def _error_reply(self, fail: _Fail) -> _Reply:
        return error_reply(fail, self.config.error_shape)

    # ----------------------------------------------------------------- sending

    async def _serve(self, reply: _Reply, receive: Any, send: Any) -> None:
        progress = _Progress()
        work = asyncio.ensure_future(_send_reply(reply, send, progress, self.gates))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            watch.cancel()
            await asyncio.wait((work, watch))
        if not work.cancelled() and work.exception() is not None:
            exc = work.exception()
            if isinstance(exc, OSError):
                logger.debug("fake upstream: send failed (%s); stopped", exc)
            else:
                logger.error("fake upstream: reply failed", exc_info=exc)
                if not progress.started:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [(b"content-type", b"text/plain")],
                        }
                    )
                    await send({"type": "http.response.body", "body": b"Internal Server Error"})
        elif work.cancelled() and watch.done() and not watch.cancelled():
            logger.info("fake upstream: client went away; stopped after %d tokens", progress.tokens)


async def _read_body(receive: Any) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_for_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_reply(reply: _Reply, send: Any, progress: _Progress, gates: Gates) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    if reply.delay > 0:
        await asyncio.sleep(reply.delay)
    headers = list(reply.headers)
    if reply.stream is None:
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    progress.started = True
    if reply.stream is None:
        await send({"type": "http.response.body", "body": reply.body})
        return
    hold = reply.hold_after
    for at, data, is_token in reply.stream:
        if hold is not None and reply.gate and is_token and progress.tokens >= hold:
            hold, held_at = None, loop.time()
            await gates.wait(reply.gate)
            start += loop.time() - held_at  # the rest keeps its pace
        delay = start + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": data, "more_body": True})
        progress.tokens += is_token
    await send({"type": "http.response.body", "body": b"", "more_body": False})
