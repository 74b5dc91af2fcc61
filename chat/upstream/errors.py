"""Upstream failures: the error types and how HTTP answers and httpx exceptions map to them."""

from __future__ import annotations

import datetime
import email.utils
import html
import json
import re
from typing import Any

import httpx

from . import netguard
from .bodies import Recorder, _decode, _read_bounded
from .endpoint import Endpoint, _seconds
from .events import UpstreamError

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

ERROR_BODY_LIMIT = 64 * 1024

SNIPPET_LENGTH = 500


class UpstreamFailure(Exception):
    """A one-shot call (``chat_once``, ``list_models``) failed; ``error`` says how."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def _snippet(text: str, content_type: str = "") -> str:
    if "html" in content_type or text.lstrip()[:1] == "<":
        text = html.unescape(_TAG_RE.sub(" ", text))
    return " ".join(text.split())[:SNIPPET_LENGTH]


def _provider_error(obj: Any) -> dict[str, Any] | None:
    """message/type/code/param from the error shapes providers and proxies use."""
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]  # some gateways wrap the error in a one-item list
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message")
        if message is not None and not isinstance(message, str):
            message = json.dumps(message)
        return {
            "message": message or None,
            "type": _str_or_none(err.get("type")),
            "code": _str_or_none(err.get("code")),
            "param": _str_or_none(err.get("param")),
        }
    if isinstance(err, str) and err:
        return {"message": err, "type": None, "code": None, "param": None}
    if isinstance(obj.get("message"), str) and obj["message"]:
        return {
            "message": obj["message"],
            "type": _str_or_none(obj.get("type")),
            "code": _str_or_none(obj.get("code")),
            "param": None,
        }
    detail = obj.get("detail")
    if isinstance(detail, str) and detail:
        return {"message": detail, "type": None, "code": None, "param": None}
    if isinstance(detail, list) and detail:
        # FastAPI-style validation errors: [{"loc": [...], "msg": "..."}]
        msgs = [d.get("msg") if isinstance(d, dict) else None for d in detail]
        message = "; ".join(str(m or d) for m, d in zip(msgs, detail, strict=True))
        return {"message": message, "type": None, "code": None, "param": None}
    return None


def _error_event(obj: Any, default: str) -> UpstreamError:
    fields = _provider_error(obj) or {}
    return UpstreamError(
        message=fields.get("message") or default,
        type=fields.get("type"),
        code=fields.get("code"),
        param=fields.get("param"),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


async def _error_from_response(
    response: httpx.Response, record: Recorder | None = None
) -> UpstreamError:
    raw, _ = await _read_bounded(response, ERROR_BODY_LIMIT)
    text = _decode(raw, response)
    if record is not None:
        record(text)
    status = response.status_code
    retryable = status in RETRYABLE_STATUSES
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        fields = _provider_error(json.loads(text)) if text.strip() else None
    except ValueError:
        fields = None
    if fields and fields["message"]:
        return UpstreamError(status=status, retryable=retryable, retry_after=retry_after, **fields)
    # The standard phrase first: some servers send "Unknown Status" for codes such as 429.
    reason = httpx.codes.get_reason_phrase(status) or response.reason_phrase
    message = f"HTTP {status} {reason}".strip()
    location = response.headers.get("location")
    if 300 <= status < 400 and location:
        message += f" (redirected to {location}; check the base URL)"
    content_type = response.headers.get("content-type", "")
    return UpstreamError(
        message=message,
        status=status,
        body=_snippet(text, content_type) or None,
        retryable=retryable,
        retry_after=retry_after,
        **{k: v for k, v in (fields or {}).items() if k != "message"},
    )


def _transport_error(exc: Exception, where: str, endpoint: Endpoint) -> UpstreamError:
    reason = str(exc) or type(exc).__name__
    blocked = netguard.upstream_error(exc)
    if blocked is not None:
        return blocked
    if isinstance(exc, httpx.ConnectTimeout):
        message = f"Timed out connecting to {where} after {_seconds(endpoint.connect_timeout)} s"
        return UpstreamError(message=message, type="timeout", retryable=True)
    if isinstance(exc, httpx.PoolTimeout):
        message = f"Too many concurrent requests to {where}; no connection became free"
        return UpstreamError(message=message, type="timeout", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        message = f"Could not connect to {where}: {reason}"
        return UpstreamError(message=message, type="connection_error", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        message = "The endpoint URL is not valid: it must start with http:// or https://"
        return UpstreamError(message=message, type="invalid_url")
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        message = f"The connection to {where} was lost: {reason}"
        return UpstreamError(message=message, type="connection_error", retryable=True)
    return UpstreamError(message=f"Request to {where} failed: {reason}", type="connection_error")


def _timeout_error(endpoint: Endpoint, got_event: bool) -> UpstreamError:
    if got_event:
        message = f"Stream idle for more than {_seconds(endpoint.idle_timeout)} s"
    else:
        message = f"No response within {_seconds(endpoint.first_byte_timeout)} s"
    return UpstreamError(message=message, type="timeout", retryable=True)
