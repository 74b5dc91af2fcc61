from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from chat import crypto
from chat.models import EndpointProfile


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: object, **options: object) -> None:
        count = 0
        with transaction.atomic():
            for profile in EndpointProfile.objects.select_for_update():
                profile.api_key_encrypted = crypto.rotate(profile.api_key_encrypted)
                profile.extra_headers_encrypted = crypto.rotate(profile.extra_headers_encrypted)
                profile.save(update_fields=["api_key_encrypted", "extra_headers_encrypted"])
                count += 1
        self.stdout.write(f"Re-encrypted the secrets of {count} endpoint profile(s).")
