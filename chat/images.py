"""Images attached to a message: uploads (data URLs) and typed URLs, checked within
the limits before anything is saved.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from chat.errors import ActionError

DATA_URL = re.compile(
    r"data:(?P<mime>image/(?:png|jpeg|gif|webp));base64,(?P<data>[A-Za-z0-9+/=]+)"
)
IMAGE_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
}


def looks_like(mime: str, raw: bytes) -> bool:
    """Whether the bytes start as a ``mime`` file does. RIFF is only a container (WAV
    and AVI are RIFF too): a WebP file says WEBP at byte 8, after the chunk size."""
    if not raw.startswith(IMAGE_MAGIC[mime]):
        return False
    return mime != "image/webp" or raw[8:12] == b"WEBP"


def images_clean(*, data_urls: list[str], urls: list[str]) -> list[dict[str, Any]]:
    """Image content parts from uploads (data URLs) and typed URLs, within the limits.
    The server never fetches an image URL: it goes to the endpoint as it is."""
    urls = [u.strip() for u in urls if u.strip()]
    if len(data_urls) + len(urls) > settings.IMAGE_MAX_COUNT:
        raise ActionError(f"At most {settings.IMAGE_MAX_COUNT} images per message.")
    parts: list[dict[str, Any]] = []
    for number, data_url in enumerate(data_urls, start=1):
        match = DATA_URL.fullmatch(data_url)
        if not match:
            raise ActionError(f"Image {number} is not a PNG, JPEG, GIF or WebP upload.")
        try:
            raw = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ActionError(f"Image {number} is not valid base64 data.") from None
        if len(raw) > settings.IMAGE_MAX_BYTES:
            raise ActionError(
                f"Image {number} is {len(raw) / 1_048_576:.1f} MB; the limit is "
                f"{settings.IMAGE_MAX_BYTES / 1_048_576:g} MB."
            )
        if not looks_like(match["mime"], raw):
            raise ActionError(f"Image {number} is not really a {match['mime']} file.")
        parts.append({"type": "image_url", "image_url": {"url": data_url}})
    for url in urls:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ActionError(f"{url[:80]!r} is not an http(s) image URL.") from None
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts
