"""Image uploads are sniffed before they are saved: a WebP is RIFF....WEBP, not any RIFF
file. Before: a RIFF WAV (or AVI) sent as image/webp was taken for a WebP."""

from __future__ import annotations

import base64

import pytest

from chat.errors import ActionError
from chat.images import images_clean, looks_like
from chat.imports.checks import _check_image

WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24
AVI = b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 24


def data_url(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize(
    ("mime", "raw", "ok"),
    [
        ("image/webp", WEBP, True),
        ("image/webp", WAV, False),
        ("image/webp", AVI, False),
        ("image/webp", b"RIFF", False),  # too short to say WEBP
        ("image/webp", b"WEBP", False),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, True),
        ("image/png", WEBP, False),
        ("image/gif", b"GIF89a", True),
        ("image/jpeg", b"\xff\xd8\xff\xe0", True),
    ],
)
def test_an_upload_is_the_kind_it_says(mime, raw, ok):
    assert looks_like(mime, raw) is ok


def test_a_wav_sent_as_webp_is_refused_and_a_webp_is_taken():
    with pytest.raises(ActionError, match="not really a image/webp"):
        images_clean(data_urls=[data_url("image/webp", WAV)], urls=[])
    (part,) = images_clean(data_urls=[data_url("image/webp", WEBP)], urls=[])
    assert part["image_url"]["url"] == data_url("image/webp", WEBP)


def test_an_imported_wav_posing_as_webp_is_refused():
    errors: list[str] = []
    _check_image(data_url("image/webp", WAV), "messages[0]", errors)
    assert errors == ["messages[0]: the data is not really a image/webp file"]
    errors = []
    _check_image(data_url("image/webp", WEBP), "messages[0]", errors)
    assert errors == []
