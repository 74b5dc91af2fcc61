"""Secrets at rest: MultiFernet over the keys in settings.FIELD_ENCRYPTION_KEYS.

A value that cannot be decrypted raises DecryptionError; it is never handed back as
ciphertext (that would leak it into forms or outgoing headers).
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    pass


def _derived_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"playground-fields", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    try:
        fernets = [Fernet(k) for k in keys] if keys else [Fernet(_derived_key(secret_key))]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(generate one with `manage.py generate_key`)"
        ) from exc
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    if value == "":
        return ""
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if token == "":
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret could not be decrypted with the configured keys "
            "(was FIELD_ENCRYPTION_KEYS or SECRET_KEY changed?)"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt with the first (newest) key."""
    if token == "":
        return ""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret could not be decrypted for rotation") from None
