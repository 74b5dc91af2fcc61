from __future__ import annotations

from django.urls import path

from chat.sockets.consumers import ConversationConsumer
from chat.sockets.sidebar import SidebarConsumer

websocket_urlpatterns = [
    path("ws/c/<str:uuid>/", ConversationConsumer.as_asgi()),
    path("ws/sidebar/", SidebarConsumer.as_asgi()),
]
