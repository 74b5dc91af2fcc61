"""Search indexes for the history sidebar (see chat/search.py), per database:

- PostgreSQL: a stored generated column search_vector = to_tsvector('simple', content)
  with a GIN index (a stored vector, not an expression index: rechecking a prefix match,
  or scanning for a common word, would otherwise recompute to_tsvector on every row).
- SQLite: an FTS5 table over the messages' text, kept in step by triggers (left out, with
  a warning, on a SQLite built without FTS5: search then scans).
- Both: an index for the sidebar's order (pinned first, then newest).

None of this is model state, so `makemigrations --check` stays clean.
"""

from __future__ import annotations

import logging

from django.db import migrations

PG_INDEX = "chat_message_search_vector"
PG_COLUMN = (
    "ALTER TABLE chat_message ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple'::regconfig, COALESCE(content, ''))) STORED"
)
ORDER_INDEX = "chat_conv_owner_pin_upd"
FTS_TABLE = "chat_message_fts"
FTS_TRIGGERS = ("chat_message_fts_ai", "chat_message_fts_ad", "chat_message_fts_au")
# A frozen copy of chat/search.py's statements (which repairs the triggers at run time).
FTS_CREATE_TABLE = (
    "CREATE VIRTUAL TABLE chat_message_fts USING fts5("
    "content, content='chat_message', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')"
)
FTS_CREATE_TRIGGERS = (
    "CREATE TRIGGER chat_message_fts_ai AFTER INSERT ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER chat_message_fts_ad AFTER DELETE ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER chat_message_fts_au AFTER UPDATE OF content ON chat_message "
    "WHEN old.content IS NOT new.content BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); "
    "INSERT INTO chat_message_fts(rowid, content) VALUES (new.id, new.content); END",
)
FTS_REBUILD = "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')"

logger = logging.getLogger(__name__)


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(
        f"CREATE INDEX {ORDER_INDEX} ON chat_conversation (owner_id, pinned DESC, updated_at DESC)"
    )
    if vendor == "postgresql":
        schema_editor.execute(PG_COLUMN)
        schema_editor.execute(f"CREATE INDEX {PG_INDEX} ON chat_message USING gin (search_vector)")
    elif vendor == "sqlite":
        try:
            schema_editor.execute(FTS_CREATE_TABLE)
        except Exception as exc:  # "no such module: fts5"
            logger.warning("SQLite has no FTS5 (%s): history search will scan messages", exc)
            return
        for statement in FTS_CREATE_TRIGGERS:
            schema_editor.execute(statement)
        schema_editor.execute(FTS_REBUILD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(f"DROP INDEX IF EXISTS {ORDER_INDEX}")
    if vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        schema_editor.execute("ALTER TABLE chat_message DROP COLUMN IF EXISTS search_vector")
    elif vendor == "sqlite":
        for trigger in FTS_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_comparison_history"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
