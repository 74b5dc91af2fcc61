from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import sync_and_async_middleware

# No inline script or style anywhere: htmx and app.js are files, htmx's own indicator
# <style> injection is switched off in base.html. Images only from us (and data: for
# tiny icons), so an image URL in model output can never phone home.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def _add_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    # The admin ships inline scripts of its own; it keeps Django's defaults.
    if not request.path.startswith("/admin/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
    # Pages are private and live: a page restored from the HTTP cache by Back would show
    # an answer as still streaming long after it finished (the socket only refreshes
    # answers that are streaming now). Static files never get here (whitenoise is first).
    if "Cache-Control" not in response and response.get("Content-Type", "").startswith("text/html"):
        add_never_cache_headers(response)
    return response


@sync_and_async_middleware
def SecurityHeadersMiddleware(get_response: Callable) -> Callable:  # noqa: N802
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _add_headers(request, await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return _add_headers(request, get_response(request))

    return middleware


class GZipPagesMiddleware(GZipMiddleware):
    """Pages and fragments gzip-compressed for a browser that accepts it (a chat page is
    57-102 KB of HTML); static files come compressed from whitenoise already.

    BREACH: Django's compressor (4.2+) pads each response with a random-length gzip
    filename ("Heal the Breach"), and the one secret every page carries, the CSRF token,
    is masked afresh for each response; no page reflects a secret next to text an
    attacker controls (endpoint keys are never sent back to the page).

    Streaming responses (Export all) are left as they are: Django compresses each chunk
    of an async stream as a gzip member of its own, which not every client reads (httpx
    keeps the first member only, silently truncating the file)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.streaming:
            return response
        return super().process_response(request, response)
