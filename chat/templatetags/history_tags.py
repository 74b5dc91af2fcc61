"""Filters for the shared transcript page (which never uses the inspector partials)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def tool_call_list(calls: Any) -> list[dict[str, str]]:
    """Name and arguments of each tool call, whatever shape a stored call has."""
    out = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append(
                {
                    "name": str(function.get("name", "")),
                    "arguments": str(function.get("arguments", "")),
                }
            )
    return out


@register.filter
def image_list(parts: Any) -> list[dict[str, Any]]:
    """Images of a message: inline ones (data: URLs, shown) and remote ones (never loaded)."""
    images = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            images.append({"url": url, "inline": url.startswith("data:image/")})
    return images
