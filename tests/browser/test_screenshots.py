"""`make screenshots` keeps working: the README's four pictures, from the real app."""

from __future__ import annotations

import struct

import pytest

from tests.browser import screenshots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_the_screenshot_command_makes_the_readme_pictures(app_server, browser, tmp_path):
    made = screenshots.shoot(tmp_path, app_server, browser)
    assert [p.name for p in made] == [
        "chat-light.png", "chat-dark.png", "comparison.png", "phone.png",
    ]  # fmt: skip
    assert png_size(made[0]) == png_size(made[1]) == png_size(made[2]) == (1440, 900)
    assert png_size(made[3]) == (780, 1688)  # 390 x 844 at 2x
    assert all(p.stat().st_size > 20_000 for p in made)  # pictures, not blank pages
