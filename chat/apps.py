from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from chat import services

        def give_demo_endpoint(
            sender: object, instance: object, created: bool, **kwargs: object
        ) -> None:
            if created and not kwargs.get("raw"):
                services.profile_ensure_demo(owner=instance)

        post_save.connect(
            give_demo_endpoint,
            sender=get_user_model(),
            dispatch_uid="chat.demo_endpoint",
            weak=False,
        )
