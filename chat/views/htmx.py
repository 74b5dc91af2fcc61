"""Going somewhere after an action, for an htmx request and a plain one alike.

htmx follows a redirect inside its own request and would swap the whole next page into
its target; it is told instead to navigate (HX-Redirect) or to reload the page
(HX-Refresh). A plain form post gets the ordinary redirect. Not a view: no URL leads here.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh


def redirect_to(request: HttpRequest, to: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """To `to` (a URL, or a URL name with its arguments, as `redirect` takes them)."""
    if request.htmx:
        return HttpResponseClientRedirect(resolve_url(to, *args, **kwargs))
    return redirect(to, *args, **kwargs)


def refresh(request: HttpRequest, to: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """The page the htmx request came from, reloaded; a plain request goes to `to` (the
    same page, named as `redirect` takes it)."""
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect(to, *args, **kwargs)
