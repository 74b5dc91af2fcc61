"""HTTP errors as exceptions: the API's refusals and the failures a script asks for."""

from __future__ import annotations

from http import HTTPStatus


class _Fail(Exception):
    """An HTTP error response, rendered in the configured error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        plain: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.plain = plain
        self.headers = headers or []


class _HtmlFail(_Fail):
    """A proxy's error page instead of an API error: always HTML, whatever the shape."""

    def __init__(self) -> None:
        super().__init__(502, "Bad Gateway")


def _unrecognized(name: str) -> _Fail:
    return _Fail(400, f"Unrecognized request argument supplied: {name}", param=name)


def _scripted_failure(status: int, message: str | None) -> _Fail:
    if status == 401:
        return _Fail(
            401,
            message or "Incorrect API key provided.",
            code="invalid_api_key",
        )
    if status == 429:
        return _Fail(
            429,
            message or "Rate limit reached for requests. Please try again in 1s.",
            type="requests",
            code="rate_limit_exceeded",
            headers=[(b"retry-after", b"1")],
        )
    if status >= 500:
        return _Fail(
            status,
            message or "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _Fail(status, message or f"{phrase} (scripted by @fake)")


_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
