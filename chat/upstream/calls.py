"""One-shot calls: a non-streamed chat completion and the model list."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from .bodies import JSON_BODY_LIMIT, Recorder, _decode, _read_bounded, _recorder
from .endpoint import Endpoint, _headers, _seconds, _timeouts, _where, api_url
from .errors import UpstreamFailure, _error_event, _error_from_response, _snippet, _transport_error
from .events import UpstreamError
from .pool import _stream
from .reading import BodyRefused, _size, body_limit
from .redact import _clean_error


async def _fetch(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    record: Recorder | None = None,
) -> tuple[httpx.Response, bytes]:
    """A one-shot request; the response's body is read (bounded) and returned."""
    url = api_url(endpoint.base_url, path)
    loop = asyncio.get_running_loop()
    deadline = asyncio.timeout(endpoint.first_byte_timeout)
    got_headers = False
    try:
        async with (
            deadline,
            _stream(
                method,
                url,
                json=body,
                headers=_headers(endpoint, "application/json"),
                timeout=_timeouts(endpoint),
            ) as response,
        ):
            got_headers = True
            deadline.reschedule(loop.time() + endpoint.idle_timeout)
            if not response.is_success:
                raise UpstreamFailure(await _error_from_response(response, record))
            raw, too_big = await _read_bounded(response, JSON_BODY_LIMIT)
    except TimeoutError:
        if not deadline.expired():
            raise
        if got_headers:
            message = f"Response stalled for more than {_seconds(endpoint.idle_timeout)} s"
        else:
            message = f"No response within {_seconds(endpoint.first_byte_timeout)} s"
        raise UpstreamFailure(
            UpstreamError(message=message, type="timeout", retryable=True)
        ) from None
    except BodyRefused as exc:
        raise UpstreamFailure(exc.error) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise UpstreamFailure(_transport_error(exc, _where(url), endpoint)) from exc
    if too_big:
        raise UpstreamFailure(
            UpstreamError(
                message=f"The response is larger than {_size(body_limit(JSON_BODY_LIMIT))}",
                status=response.status_code,
                type="response_too_large",
            )
        )
    return response, raw


async def _chat_once(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> dict[str, Any]:
    """POST ``body`` and return the parsed completion; raises ``UpstreamFailure``.

    ``raw``, when given, receives the response body as text (also of an error answer).
    """
    record = _recorder(raw)
    response, content = await _fetch(endpoint, "POST", path, body, record)
    text = _decode(content, response)
    if record is not None:
        record(text)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise UpstreamFailure(
            UpstreamError(
                message="The endpoint did not answer with a JSON object",
                status=response.status_code,
                body=_snippet(text, response.headers.get("content-type", "")),
            )
        )
    if obj.get("error"):
        error = _error_event(obj, "The endpoint reported an error")
        error.status = response.status_code
        raise UpstreamFailure(error)
    return obj


def _model_ids(obj: Any) -> list[str] | None:
    items: Any = None
    if isinstance(obj, list):
        items = obj
    elif isinstance(obj, dict):
        items = obj.get("data") if isinstance(obj.get("data"), list) else obj.get("models")
    if not isinstance(items, list):
        return None
    ids: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = next(
                (item[k] for k in ("id", "name", "model") if isinstance(item.get(k), str)), None
            )
        if not isinstance(item, str):
            return None
        if item and item not in ids:
            ids.append(item)
    return ids


async def _list_models(endpoint: Endpoint) -> list[str]:
    """Model ids from ``GET {base}/models``; raises ``UpstreamFailure``."""
    response, raw = await _fetch(endpoint, "GET", "models")
    text = _decode(raw, response)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    ids = _model_ids(obj)
    if ids is None:
        if isinstance(obj, dict) and obj.get("error"):
            error = _error_event(obj, "The endpoint reported an error")
            error.status = response.status_code
            raise UpstreamFailure(error)
        snippet = _snippet(text, response.headers.get("content-type", ""))
        raise UpstreamFailure(
            UpstreamError(
                message=(
                    "The endpoint answered /models with something that is not a model list: "
                    + (snippet[:200] or "an empty body")
                ),
                status=response.status_code,
                body=snippet or None,
            )
        )
    return ids


async def chat_once(
    endpoint: Endpoint,
    body: dict[str, Any],
    *,
    path: str = "chat/completions",
    raw: list[str] | None = None,
) -> dict[str, Any]:
    """One non-streamed request; raises ``UpstreamFailure`` (its error cleaned)."""
    try:
        return await _chat_once(endpoint, body, path=path, raw=raw)
    except UpstreamFailure as exc:
        _clean_error(exc.error, endpoint)
        raise


async def list_models(endpoint: Endpoint) -> list[str]:
    """Model ids from ``GET {base}/models``; raises ``UpstreamFailure`` (cleaned)."""
    try:
        return await _list_models(endpoint)
    except UpstreamFailure as exc:
        _clean_error(exc.error, endpoint)
        raise
