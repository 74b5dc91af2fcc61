from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from chat import crypto
from chat.models import EndpointProfile

KEY = "sk-test-1234567890abcdef"


def test_it_round_trips_and_never_stores_plaintext(settings):
    token = crypto.encrypt(KEY)
    assert KEY not in token
    assert crypto.decrypt(token) == KEY


def test_a_decrypt_failure_raises_instead_of_returning_ciphertext(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = crypto.encrypt(KEY)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_rotation_keeps_old_tokens_readable_and_moves_them_to_the_new_key(settings):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt(KEY)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == KEY
    rotated = crypto.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == KEY
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_a_malformed_key_list_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")


@pytest.mark.django_db
def test_the_database_column_holds_no_readable_key(owner):
    profile = EndpointProfile(owner=owner, name="OpenAI", base_url="https://api.openai.com/v1")
    profile.api_key = KEY
    profile.extra_headers = {"X-Secret": "hdr-secret-value"}
    profile.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted, extra_headers_encrypted FROM chat_endpointprofile "
            "WHERE id = %s",
            [profile.pk.hex if connection.vendor == "sqlite" else profile.pk],
        )
        raw_key, raw_headers = cursor.fetchone()
    assert raw_key and KEY not in raw_key
    assert "hdr-secret-value" not in raw_headers
    fresh = EndpointProfile.objects.get(pk=profile.pk)
    assert fresh.api_key == KEY
    assert fresh.extra_headers == {"X-Secret": "hdr-secret-value"}
    assert fresh.masked_key == "…cdef"


@pytest.mark.django_db
def test_rotate_keys_command_re_encrypts_every_profile(owner, settings):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    profile = EndpointProfile(owner=owner, name="P", base_url="https://x.example/v1")
    profile.api_key = KEY
    profile.save()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_keys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert EndpointProfile.objects.get(pk=profile.pk).api_key == KEY
