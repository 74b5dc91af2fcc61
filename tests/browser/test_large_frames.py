"""Large socket frames in a real Chromium against a real daphne (as `make run` serves it).

Before: daphne's default websocket message limit (1 MiB) was below the app's own (a 5 MB
image): a 1.5 MB image attached in the browser was never sent or saved, and nothing said
why; a 1.1 MB text frame dropped the socket without a close frame."""

from __future__ import annotations

import base64
import os
import zlib

import pytest
from django.conf import settings

from chat import conversations
from chat.models import EndpointProfile, Message
from tests.bench.wire import session_key_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZE = int(4.9 * 1024 * 1024)  # under IMAGE_MAX_BYTES (5 MiB)


def png_of(size: int, seed: int = 0) -> bytes:
    """A real 64x64 PNG, padded after IEND with random bytes (which do not compress) to
    `size` bytes: every decoder shows it, and its base64 is as large as a photo's."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", (64).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
        + chunk(b"IDAT", zlib.compress((b"\x00" + b"\xff\x80\x00" * 64) * 64))
        + chunk(b"IEND", b"")
    )
    return png + os.urandom(size - len(png))


def open_conversation(page, app_server, django_user_model):
    user = django_user_model.objects.create_user("ada", password="a-long-passphrase-42")
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user), "url": app_server}]
    )
    page.goto(f"{app_server}/c/{conversation.pk}/")
    page.get_by_label("Message").wait_for()
    return user, conversation


def attach(page, tmp_path, count: int) -> list[bytes]:
    images = [png_of(SIZE) for _ in range(count)]
    paths = []
    for number, data in enumerate(images):
        path = tmp_path / f"photo{number}.png"
        path.write_bytes(data)
        paths.append(str(path))
    page.locator("[data-image-input]").set_input_files(paths)
    page.locator("[data-attached] .chip").nth(count - 1).wait_for()
    return images


def test_a_4_9_mb_image_is_sent_saved_and_shown(app_server, page, django_user_model, tmp_path):
    _, conversation = open_conversation(page, app_server, django_user_model)
    (image,) = attach(page, tmp_path, 1)
    page.get_by_label("Message").fill("What is in this picture?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator('[data-role="assistant"]').first
    answer.and_(page.locator('[data-status="complete"]')).wait_for()

    question = Message.objects.get(conversation=conversation, role="user")
    (part,) = [p for p in question.content_parts if p["type"] == "image_url"]
    assert base64.b64decode(part["image_url"]["url"].split(",", 1)[1]) == image
    thumb = page.locator('[data-role="user"] img.thumb')
    assert thumb.count() == 1
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 64
    assert page.locator("#socket-state").inner_text() == ""
    assert not page.problems, page.problems


def test_a_message_too_large_for_the_socket_says_so_and_keeps_everything(
    app_server, page, django_user_model, tmp_path
):
    """Five 4.9 MB images make a 33 MB frame, past the largest a legal message makes
    (before, the browser sent it and daphne dropped it: nothing was said)."""
    _, conversation = open_conversation(page, app_server, django_user_model)
    attach(page, tmp_path, 5)
    page.get_by_label("Message").fill("Compare these")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#composer-error")
    error.wait_for()
    assert "Not sent: with its images this message is 32.7 MB" in error.inner_text()
    assert "at most 27.5 MB" in error.inner_text()
    # Nothing lost: the text and the images are still in the composer; nothing saved.
    assert page.get_by_label("Message").input_value() == "Compare these"
    assert page.locator("[data-attached] .chip").count() == 5
    assert not Message.objects.filter(conversation=conversation).exists()
    # With one removed it is the largest message the app takes (4 x 4.9 MB, a 26 MB
    # frame): sent, saved, answered.
    page.locator("[data-attached] .chip-x").first.click()
    page.get_by_role("button", name="Send").click()
    answer = page.locator('[data-role="assistant"]').first
    answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=60_000)
    question = Message.objects.get(conversation=conversation, role="user")
    assert [p["type"] for p in question.content_parts].count("image_url") == 4
    assert page.locator('[data-role="user"] img.thumb').count() == 4
    assert page.locator("#composer-error").count() == 0
    assert page.locator("#socket-state").inner_text() == ""
    assert not page.problems, page.problems


def test_a_message_over_the_character_limit_keeps_its_text_in_the_page(
    app_server, page, django_user_model
):
    """The server refuses it without sending the text back; the composer keeps what was
    typed (before, the text came back in the frame: up to ~28 MB)."""
    _, conversation = open_conversation(page, app_server, django_user_model)
    text = "y" * (settings.MAX_MESSAGE_CHARS + 1)
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    error = page.locator("#composer-error")
    error.wait_for()
    assert "the limit is 200,000" in error.inner_text()
    assert page.get_by_label("Message").input_value() == text
    assert not Message.objects.filter(conversation=conversation).exists()
    # Shortened, it is sent.
    page.get_by_label("Message").fill("short now")
    page.get_by_role("button", name="Send").click()
    page.locator('[data-role="assistant"][data-status="complete"]').first.wait_for()
    assert Message.objects.filter(conversation=conversation, content="short now").exists()
    assert not page.problems, page.problems
