from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from chat.history import SIDEBAR_PAGE, sidebar_page

SIDEBAR_LIMIT = SIDEBAR_PAGE


def sidebar(request: HttpRequest) -> dict[str, Any]:
    """The sidebar's conversation list (pinned first, then newest), queried only if a
    template shows it: one query per page, whatever the history's size."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    page: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        if not page:
            page.update(sidebar_page(owner=user))
        return page

    def conversations() -> list[Any]:
        return load()["conversations"]

    def sidebar_next_offset() -> int | None:
        return load()["next_offset"]

    return {"conversations": conversations, "sidebar_next_offset": sidebar_next_offset}


THEMES = ("light", "dark")
THEME_COOKIE = "playground_theme"


def theme(request: HttpRequest) -> dict[str, Any]:
    """The theme the browser chose with the theme button (a cookie, so the first paint is
    already right); none means "follow the system" (prefers-color-scheme)."""
    chosen = request.COOKIES.get(THEME_COOKIE, "")
    return {"theme": chosen if chosen in THEMES else ""}
