from __future__ import annotations

import asyncio

from django.apps import AppConfig
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.core.signals import request_finished
from django.db import connections
from django.db.models.signals import post_save, pre_delete, pre_save


def close_request_connections(**kwargs: object) -> None:
    """SQLite connections persist (CONN_MAX_AGE None) for the one database thread that
    serves the sockets and runs. Each HTTP request runs in a thread of its own that ends
    with it (Django's ASGI handler), so its connection is closed here, in that thread,
    rather than left open until the garbage collector finds it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # Sent from an event loop's thread (an async streaming response closing): no
        # request ran the ORM in this thread, and Django refuses to close from here.
        return
    for conn in connections.all(initialized_only=True):
        persistent = conn.vendor == "sqlite" and conn.settings_dict["CONN_MAX_AGE"] != 0
        # (A test's requests run inside its transaction: that connection stays.)
        if persistent and not conn.in_atomic_block:
            conn.close()


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self) -> None:
        # Late: chat.apps is what builds the app registry that chat.models (imported by
        # these two) needs; ready() runs once it is built.
        from chat import profiles
        from chat.sockets import auth as wsauth

        def give_demo_endpoint(
            sender: object, instance: object, created: bool, **kwargs: object
        ) -> None:
            if created and not kwargs.get("raw"):
                profiles.profile_ensure_demo(owner=instance)

        request_finished.connect(
            close_request_connections, dispatch_uid="chat.close_request_connections"
        )
        post_save.connect(
            give_demo_endpoint,
            sender=get_user_model(),
            dispatch_uid="chat.demo_endpoint",
            weak=False,
        )
        # Open sockets end with their session or user (chat/sockets/auth.py).
        user_model = get_user_model()
        user_logged_out.connect(wsauth.on_logged_out, dispatch_uid="chat.ws_logged_out")
        pre_save.connect(wsauth.on_user_pre_save, sender=user_model, dispatch_uid="chat.ws_pre")
        post_save.connect(wsauth.on_user_post_save, sender=user_model, dispatch_uid="chat.ws_post")
        pre_delete.connect(wsauth.on_user_pre_delete, sender=user_model, dispatch_uid="chat.ws_del")
