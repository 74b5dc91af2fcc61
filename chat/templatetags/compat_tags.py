"""``{% compat_panel profile %}``: the compatibility report section of a profile page."""

from __future__ import annotations

from typing import Any

from django import template

from chat.compat import panel_context

register = template.Library()


@register.inclusion_tag("chat/_compat.html", takes_context=True)
def compat_panel(context: template.Context, profile: Any) -> dict[str, Any]:
    return {
        **panel_context(profile),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
