"""URLs of the conversation history: sidebar, search, export / import, share links.
Appended to chat/urls.py (same "chat" namespace)."""

from __future__ import annotations

from django.urls import path

from chat.views import history, share

urlpatterns = [
    path("history/", history.history_list, name="history_list"),
    path("history/search/", history.history_search, name="history_search"),
    path("c/<uuid:conversation_id>/rename/", history.history_rename, name="history_rename"),
    path("c/<uuid:conversation_id>/pin/", history.history_pin, name="history_pin"),
    path("c/<uuid:conversation_id>/remove/", history.history_delete, name="history_delete"),
    path("c/<uuid:conversation_id>/export.json", history.export_json, name="export_json"),
    path("c/<uuid:conversation_id>/export.md", history.export_markdown, name="export_markdown"),
    path("export/", history.export_all, name="export_all"),
    path("import/", history.import_page, name="import"),
    path("c/<uuid:conversation_id>/share/", share.share, name="share"),
    path("c/<uuid:conversation_id>/share/revoke/", share.share_revoke, name="share_revoke"),
    path("s/<str:token>/", share.shared, name="shared"),
]
