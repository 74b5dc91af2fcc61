from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
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


def _add_csp(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    # The admin ships inline scripts of its own; it keeps Django's defaults.
    if not request.path.startswith("/admin/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
    return response


@sync_and_async_middleware
def ContentSecurityPolicyMiddleware(get_response: Callable) -> Callable:  # noqa: N802
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _add_csp(request, await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return _add_csp(request, get_response(request))

    return middleware
