"""Searching a user's conversations: titles and message text.

Message text is matched word by word, every word of the query as a prefix ("strea" finds
"streaming"), so the sidebar can filter while the user types:

- PostgreSQL: full-text search, ``search_vector @@ to_tsquery('simple', 'term:*' & ...)``
  where ``search_vector`` is a stored generated column, ``to_tsvector('simple', content)``,
  with a GIN index (migration 0005). Stored, not an expression index: a prefix query
  rechecks every row the index returns, and with an expression index that recheck (or the
  sequential scan the planner picks for a common word) recomputes to_tsvector for each
  message, 3.5 s on 44,000 messages against 0.1 s stored. The ``simple`` configuration
  (lower-casing, no stemming, no stop words) because prefixes of stemmed words match
  badly and a chat history mixes languages.
- SQLite: an FTS5 table over ``chat_message.content`` (external content, ``unicode61``
  tokenizer) that triggers keep in step with every insert, update and delete (migration
  0005). A prefix query ``"term"*`` is an index lookup, where ``LIKE '%term%'`` would read
  every message of every user.
- Anything else (or a SQLite built without FTS5): ``icontains`` per word, a scan of every
  message (``make searchbench SEARCHBENCH_ARGS=--scan`` times it: fine for hundreds of
  conversations, slow for ten thousand).

Titles are short and one per conversation: they are matched as substrings (``icontains``
per word) on the user's own rows on every backend.

Snippets are built from escaped pieces, never by marking up unescaped text.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Min, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Greatest, Lower, StrIndex, Substr
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message
from chat.render import plain_text

MAX_TERMS = 8
MAX_TERM_CHARS = 64
MIN_QUERY_CHARS = 2
RESULT_LIMIT = 30
SNIPPET_CHARS = 160

FTS_TABLE = "chat_message_fts"
FTS_TRIGGERS = ("chat_message_fts_ai", "chat_message_fts_ad", "chat_message_fts_au")
# One statement per entry (SQLite runs one at a time); the 0005 migration has a copy.
FTS_CREATE_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS chat_message_fts_ai AFTER INSERT ON chat_message BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content); END",
    f"CREATE TRIGGER IF NOT EXISTS chat_message_fts_ad AFTER DELETE ON chat_message BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) "
    f"VALUES ('delete', old.id, old.content); END",
    # A streaming answer is saved about once a second: re-index only when the text moved.
    f"CREATE TRIGGER IF NOT EXISTS chat_message_fts_au AFTER UPDATE OF content ON chat_message "
    f"WHEN old.content IS NOT new.content BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) "
    f"VALUES ('delete', old.id, old.content); "
    f"INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content); END",
)
FTS_REBUILD = f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"

_TERM_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    conversation_id: uuid.UUID
    title: str
    pinned: bool
    updated_at: datetime
    message_id: int | None
    title_html: SafeString
    snippet_html: SafeString


def query_terms(query: str) -> list[str]:
    """The words of a query (letters and digits), lower-cased, de-duplicated, bounded."""
    terms: list[str] = []
    for term in _TERM_RE.findall(query.lower()):
        term = term[:MAX_TERM_CHARS]
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


# The benchmark sets "scan" to time the fallback on a database that has an index.
forced_backend = ""


def backend() -> str:
    """``postgresql``, ``fts5`` or ``scan``: how message text is searched here."""
    if forced_backend:
        return forced_backend
    if connection.vendor == "postgresql":
        return "postgresql"
    if connection.vendor == "sqlite" and fts_ready():
        return "fts5"
    return "scan"


def fts_ready() -> bool:
    """The FTS5 table exists and its triggers too. Django rebuilds a SQLite table for
    some schema changes (copy, drop, rename), which drops its triggers: if a later
    migration did that, put them back and re-index, rather than search a stale index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name FROM sqlite_master WHERE name = %s OR name IN (%s, %s, %s)",
            [FTS_TABLE, *FTS_TRIGGERS],
        )
        found = {name for _, name in cursor.fetchall()}
    if FTS_TABLE not in found:
        return False  # SQLite without FTS5: the migration left it out
    if not set(FTS_TRIGGERS) <= found:
        fts_repair()
    return True


def fts_repair() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in FTS_CREATE_TRIGGERS:
            cursor.execute(statement)
        cursor.execute(FTS_REBUILD)


def _fts5_query(terms: list[str]) -> str:
    # Each term quoted (terms hold only letters and digits, so no quote to escape),
    # then `*` for a prefix match; juxtaposition is AND.
    return " ".join(f'"{term}"*' for term in terms)


def _tsquery(terms: list[str]) -> str:
    return " & ".join(f"{term}:*" for term in terms)


def _scan_condition(terms: list[str], field: str = "content") -> Q:
    condition = Q()
    for term in terms:
        condition &= Q(**{f"{field}__icontains": term})
    return condition


def _ranked_fts5(terms: list[str], owner_id: Any, limit: int) -> list[tuple[uuid.UUID, int | None]]:
    """SQLite: the owner's matching conversations in the sidebar's order, each with its
    first matching message, in one query that reads the index once. The match list is of
    every user (the outer query keeps the owner's): scoped inside, SQLite would probe
    every match once per conversation."""
    # Terms hold letters and digits only: no LIKE wildcard to escape; SQLite's LIKE
    # ignores (ASCII) case.
    titles = " AND ".join(["c.title LIKE %s"] * len(terms))
    sql = (
        f"SELECT c.id, fm.first FROM chat_conversation c LEFT JOIN ("
        f"SELECT m.conversation_id AS cid, MIN(m.id) AS first FROM {FTS_TABLE} f "
        f"JOIN chat_message m ON m.id = f.rowid WHERE f.{FTS_TABLE} MATCH %s "
        f"GROUP BY m.conversation_id) fm ON fm.cid = c.id "
        f"WHERE c.owner_id = %s AND (({titles}) OR fm.first IS NOT NULL) "
        # Listed only (ConversationQuerySet.listed): with a message.
        "AND EXISTS (SELECT 1 FROM chat_message l WHERE l.conversation_id = c.id) "
        f"ORDER BY c.pinned DESC, c.updated_at DESC LIMIT %s"
    )
    params = [_fts5_query(terms), owner_id, *(f"%{term}%" for term in terms), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(uuid.UUID(str(cid)), first) for cid, first in cursor.fetchall()]


def _ranked_postgresql(
    terms: list[str], owner: Any, limit: int
) -> list[tuple[uuid.UUID, int | None]]:
    """PostgreSQL: rank with the match list as a hashed subquery, then find the first
    matching message of the few conversations shown. (A single join makes the planner
    loop over the match list once per conversation for rare words.)"""
    match = RawSQL(
        "SELECT conversation_id FROM chat_message WHERE search_vector @@ "
        "to_tsquery('simple'::regconfig, %s)",
        (_tsquery(terms),),
    )
    ids = list(
        Conversation.objects.filter(owner=owner)
        .listed()
        .filter(_scan_condition(terms, "title") | Q(pk__in=match))
        .order_by("-pinned", "-updated_at")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conversation_id, MIN(id) FROM chat_message WHERE conversation_id = ANY(%s) "
            "AND search_vector @@ to_tsquery('simple'::regconfig, %s) GROUP BY conversation_id",
            [ids, _tsquery(terms)],
        )
        first = dict(cursor.fetchall())
    return [(cid, first.get(cid)) for cid in ids]


def _ranked_scan(terms: list[str], owner: Any, limit: int) -> list[tuple[uuid.UUID, int | None]]:
    matching = Message.objects.filter(_scan_condition(terms))
    ids = list(
        Conversation.objects.filter(owner=owner)
        .listed()
        .filter(_scan_condition(terms, "title") | Q(pk__in=matching.values("conversation_id")))
        .order_by("-pinned", "-updated_at")
        .values_list("id", flat=True)[:limit]
    )
    first = dict(
        matching.filter(conversation_id__in=ids)
        .order_by()
        .values("conversation_id")
        .annotate(first=Min("id"))
        .values_list("conversation_id", "first")
    )
    return [(cid, first.get(cid)) for cid in ids]


def conversations_search(
    *, owner: AbstractBaseUser, query: str, limit: int = RESULT_LIMIT
) -> list[Hit]:
    """The owner's conversations whose title or messages match, pinned first then
    newest first, each with a snippet of its first matching message."""
    terms = query_terms(query)
    if len("".join(terms)) < MIN_QUERY_CHARS:
        return []
    kind = backend()
    if kind == "postgresql":
        ranked = _ranked_postgresql(terms, owner, limit)
    elif kind == "fts5":
        ranked = _ranked_fts5(terms, owner.pk, limit)
    else:
        ranked = _ranked_scan(terms, owner, limit)
    if not ranked:
        return []
    conversations = Conversation.objects.only("id", "title", "pinned", "updated_at").in_bulk(
        [cid for cid, _ in ranked]
    )
    windows = _windows([first for _, first in ranked if first], terms[0])
    word_start = _pattern(terms, word_start=True)
    anywhere = _pattern(terms, word_start=False)
    hits = []
    for cid, message_id in ranked:
        conversation = conversations[cid]
        window = windows.get(message_id, ("", False, False)) if message_id else ("", False, False)
        hits.append(
            Hit(
                conversation_id=cid,
                title=conversation.title,
                pinned=conversation.pinned,
                updated_at=conversation.updated_at,
                message_id=message_id,
                title_html=highlight(conversation.title or "Untitled", anywhere),
                snippet_html=snippet(*window, word_start),
            )
        )
    return hits


def _windows(message_ids: list[int], term: str) -> dict[int, tuple[str, bool, bool]]:
    """Around the first occurrence of ``term`` in each message: (text, cut before, cut
    after). Only a window is read, however long the message."""
    if not message_ids:
        return {}
    before, size = 120, 480
    rows = (
        Message.objects.filter(pk__in=message_ids)
        .annotate(at=StrIndex(Lower("content"), Value(term)))
        .annotate(start=Greatest("at", Value(before + 1)) - before)
        .annotate(window=Substr("content", F("start"), size))
        .values_list("id", "start", "window")
    )
    # The content's length is not read (it may be long); a full window means "more".
    return {pk: (text, start > 1, len(text) >= size) for pk, start, text in rows}


def _pattern(terms: list[str], *, word_start: bool) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    prefix = r"(?<![^\W_])" if word_start else ""
    return re.compile(f"{prefix}(?:{alternatives})", re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern[str]) -> SafeString:
    """``text`` escaped, with every match of ``pattern`` in ``<mark>``."""
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() == match.end():
            continue
        pieces.append(escape(text[last : match.start()]))
        pieces.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece escaped above


def snippet(text: str, cut_before: bool, cut_after: bool, pattern: re.Pattern[str]) -> SafeString:
    """About SNIPPET_CHARS of ``text`` around its first match, on one line, highlighted;
    as words, without markdown syntax or demo scripting lines."""
    text = plain_text(text)
    if not text:
        return mark_safe("")
    match = pattern.search(text)
    start = max(0, (match.start() if match else 0) - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    if start > 0:
        space = text.find(" ", start, start + 20)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", end - 20, end)
        end = space if space > start else end
    body = highlight(text[start:end], pattern)
    lead = "…" if cut_before or start > 0 else ""
    tail = "…" if cut_after or end < len(text) else ""
    return mark_safe(f"{lead}{body}{tail}")  # noqa: S308 - body is escaped
