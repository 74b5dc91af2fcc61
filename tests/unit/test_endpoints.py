from __future__ import annotations

import httpx
import pytest
from django.urls import reverse

from chat.models import EndpointProfile
from chat.upstream import client as upstream_client

pytestmark = pytest.mark.django_db
KEY = "sk-live-secret-abcdefgh1234"


@pytest.fixture
def profile(owner):
    p = EndpointProfile(owner=owner, name="Gateway", base_url="https://gw.example/v1")
    p.api_key = KEY
    p.extra_headers = {"X-Team": "hdr-secret"}
    p.save()
    return p


def form_data(**overrides):
    data = {
        "name": "Local vLLM",
        "base_url": "http://localhost:8001/v1/",
        "default_model": "",
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "60",
        "api_key": "",
        "extra_headers": "",
        "models_text": "",
        "quirk_include_usage": "on",
    }
    data.update(overrides)
    return data


def test_create_stores_the_key_encrypted_and_never_shows_it(owner_client, owner):
    response = owner_client.post(
        reverse("chat:endpoint_new"), form_data(api_key=KEY, extra_headers="X-Org: hdr-secret")
    )
    assert response.status_code == 302
    profile = EndpointProfile.objects.get(owner=owner, name="Local vLLM")
    assert profile.base_url == "http://localhost:8001/v1"  # trailing slash tolerated
    assert profile.api_key == KEY
    for url in (reverse("chat:endpoints"), reverse("chat:endpoint_edit", args=[profile.pk])):
        page = owner_client.get(url).content.decode()
        assert KEY not in page and "hdr-secret" not in page
        assert "…1234" in page


def test_a_blank_key_keeps_the_stored_one_and_clear_removes_it(owner_client, profile):
    url = reverse("chat:endpoint_edit", args=[profile.pk])
    owner_client.post(url, form_data(name="Gateway", base_url=profile.base_url))
    profile.refresh_from_db()
    assert profile.api_key == KEY and profile.extra_headers == {"X-Team": "hdr-secret"}
    owner_client.post(url, form_data(name="Gateway", base_url=profile.base_url, clear_api_key="on"))
    profile.refresh_from_db()
    assert profile.api_key == "" and profile.masked_key == ""


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"base_url": "ftp://x.example/v1"}, "base_url", "valid URL"),
        ({"base_url": "javascript:alert(1)"}, "base_url", "valid URL"),
        ({"extra_headers": "no colon here"}, "extra_headers", "Line 1"),
        ({"idle_timeout": "0"}, "idle_timeout", "Between 0.1 and 3600"),
        ({"name": "Gateway"}, "name", "already have an endpoint"),
    ],
)
def test_bad_input_gets_an_inline_message_and_keeps_what_was_typed(
    owner_client, profile, overrides, field, text
):
    before = EndpointProfile.objects.count()
    response = owner_client.post(reverse("chat:endpoint_new"), form_data(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert text in " ".join(errors[field])
    assert EndpointProfile.objects.count() == before
    # what was typed comes back in the form
    assert response.context["form"]["base_url"].value() == form_data(**overrides)["base_url"]


def test_another_users_profile_is_a_404_everywhere(client, outsider, profile):
    client.force_login(outsider)
    for name in ("endpoint_edit", "endpoint_delete"):
        assert client.get(reverse(f"chat:{name}", args=[profile.pk])).status_code == 404
    for name in ("endpoint_edit", "endpoint_delete", "endpoint_test", "endpoint_models"):
        assert client.post(reverse(f"chat:{name}", args=[profile.pk])).status_code == 404
    assert client.get(reverse("chat:model_options") + f"?profile={profile.pk}").status_code == 404
    profile.refresh_from_db()
    assert profile.name == "Gateway"


def test_delete_removes_the_profile(owner_client, profile):
    owner_client.post(reverse("chat:endpoint_delete", args=[profile.pk]))
    assert not EndpointProfile.objects.filter(pk=profile.pk).exists()


def mock_upstream(handler):
    upstream_client.set_transport(httpx.MockTransport(handler))


@pytest.mark.django_db(transaction=True)
def test_fetch_models_saves_the_list(owner_client, profile):
    seen = {}

    def handler(request):
        seen["auth"] = request.headers.get("authorization")
        seen["team"] = request.headers.get("x-team")
        seen["url"] = str(request.url)
        return httpx.Response(200, json={"data": [{"id": "m-1"}, {"id": "m-2"}]})

    mock_upstream(handler)
    try:
        response = owner_client.post(reverse("chat:endpoint_models", args=[profile.pk]))
    finally:
        upstream_client.set_transport(None)
    assert response.status_code == 200
    assert "2 models saved" in response.content.decode()
    assert KEY not in response.content.decode()
    assert seen == {
        "auth": f"Bearer {KEY}",
        "team": "hdr-secret",
        "url": "https://gw.example/v1/models",
    }
    profile.refresh_from_db()
    assert profile.models_cache == ["m-1", "m-2"] and profile.default_model == "m-1"


@pytest.mark.django_db(transaction=True)
def test_test_connection_reports_the_providers_error(owner_client, profile):
    def handler(request):
        return httpx.Response(
            401,
            json={"error": {"message": "Incorrect API key", "type": "invalid_request_error",
                            "code": "invalid_api_key"}},
        )  # fmt: skip

    mock_upstream(handler)
    try:
        response = owner_client.post(reverse("chat:endpoint_test", args=[profile.pk]))
    finally:
        upstream_client.set_transport(None)
    page = response.content.decode()
    assert "HTTP 401" in page and "Incorrect API key" in page and "invalid_api_key" in page
    assert KEY not in page


@pytest.mark.django_db(transaction=True)
def test_test_connection_against_the_demo_endpoint_succeeds(owner_client, owner):
    demo = EndpointProfile.objects.get(owner=owner, is_demo=True)
    page = owner_client.post(reverse("chat:endpoint_test", args=[demo.pk])).content.decode()
    assert "3 models" in page
    assert "Chat with demo" in page and "✗" not in page


def test_quirks_and_prices_are_edited_on_the_profile(owner_client, profile):
    url = reverse("chat:endpoint_edit", args=[profile.pk])
    owner_client.post(
        url,
        form_data(
            name="Gateway",
            base_url=profile.base_url,
            quirk_max_tokens_field="max_completion_tokens",
            quirk_system_role="developer",
            quirk_drop_params="temperature, top_p",
            quirk_include_usage="",
            quirk_reasoning_field="reasoning",
            quirk_default_api="responses",
            quirk_responses="on",
            quirk_responses_system="message",
            price_input="2.5",
            price_output="10",
        ),
    )
    profile.refresh_from_db()
    assert profile.quirks == {
        "max_tokens_field": "max_completion_tokens",
        "include_usage": False,
        "system_role": "developer",
        "drop_params": ["temperature", "top_p"],
        "reasoning_field": "reasoning",
        "default_api": "responses",
        "responses": True,
        "responses_system": "message",
    }
    page = owner_client.get(url).content.decode()
    assert '<option value="reasoning" selected>' in page
    assert profile.endpoint().reasoning_field == "reasoning"
    assert float(profile.price_input) == 2.5 and float(profile.price_output) == 10
    response = owner_client.post(
        url, form_data(name="Gateway", base_url=profile.base_url, quirk_drop_params="no way!")
    )
    assert "Not a parameter name" in response.content.decode()
