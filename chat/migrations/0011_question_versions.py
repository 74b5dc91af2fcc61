"""Versions of edited questions (chat/versions.py): Message.branch, Conversation.versions.

On SQLite, adding a NOT NULL column rebuilds the table (copy, drop, rename), which drops
what migration 0005 made outside the model state: the FTS5 triggers on chat_message and
the sidebar's order index on chat_conversation. They are put back here (chat/search.py
would repair the triggers at the first search, but with a full re-index on a user's
request), from a frozen copy of 0005's statements.
"""

from __future__ import annotations

from django.db import migrations, models

ORDER_INDEX = (
    "CREATE INDEX IF NOT EXISTS chat_conv_owner_pin_upd "
    "ON chat_conversation (owner_id, pinned DESC, updated_at DESC)"
)
FTS_CREATE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_ai AFTER INSERT ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_ad AFTER DELETE ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_au AFTER UPDATE OF content ON chat_message "
    "WHEN old.content IS NOT new.content BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); "
    "INSERT INTO chat_message_fts(rowid, content) VALUES (new.id, new.content); END",
)
FTS_REBUILD = "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')"


def restore_sqlite_extras(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return  # PostgreSQL adds the columns in place
    schema_editor.execute(ORDER_INDEX)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'chat_message_fts'")
        has_fts = cursor.fetchone() is not None
    if has_fts:
        for statement in FTS_CREATE_TRIGGERS:
            schema_editor.execute(statement)
        schema_editor.execute(FTS_REBUILD)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0010_message_mode"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="versions",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="message",
            name="branch",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(restore_sqlite_extras, migrations.RunPython.noop),
    ]
