"""HTML compressed for a browser that accepts gzip (item 19), with Django's BREACH
padding; streaming responses (Export all) left as they are."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from django.urls import reverse

from tests.integration.history_world import chat_with

pytestmark = pytest.mark.django_db
GZIP = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}
# The per-response parts of a page: the CSRF token, masked afresh each time.
CSRF = re.compile(rb'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+')


def unmasked(html: bytes) -> bytes:
    return CSRF.sub(rb"\1<token>", html)


def test_a_chat_page_comes_gzipped_and_decodes_to_the_same_page(owner_client, owner):
    conversation = chat_with(owner, "Compressed", "hello " * 200, "hi " * 200)
    url = reverse("chat:conversation", args=[conversation.pk])
    plain = owner_client.get(url)
    assert plain.status_code == 200 and not plain.has_header("Content-Encoding")
    packed = owner_client.get(url, **GZIP)
    assert packed.status_code == 200
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert int(packed["Content-Length"]) == len(packed.content) < len(plain.content) / 3
    # Django's BREACH padding: a random-length file name in the gzip header.
    assert packed.content[3] & gzip.FNAME
    page = gzip.decompress(packed.content)
    assert b"Compressed" in page and b"</html>" in page
    assert unmasked(page) == unmasked(plain.content)
    assert CSRF.search(page)


def test_a_fragment_comes_gzipped_too(owner_client, owner):
    for i in range(30):
        chat_with(owner, f"Conversation number {i}", "x")
    response = owner_client.get(reverse("chat:history_list"), HTTP_HX_REQUEST="true", **GZIP)
    assert response["Content-Encoding"] == "gzip"
    assert b"Conversation number 29" in gzip.decompress(response.content)


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
def test_export_all_still_streams_and_reads_whole(owner_client, owner):
    titles = {chat_with(owner, f"Export {i}", "q " * 100, "a " * 100).title for i in range(3)}
    response = owner_client.get(reverse("chat:export_all"), **GZIP)
    assert response.status_code == 200 and response.streaming
    assert not response.has_header("Content-Encoding")
    data = json.loads(b"".join(response))
    assert {c["title"] for c in data["conversations"]} == titles
