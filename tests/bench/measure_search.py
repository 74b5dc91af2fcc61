"""The search benchmark: seed a big history, then time the sidebar's search.

Seeds one user with N conversations of a few messages each (plus a second user with a
tenth as many, so owner scoping has something to skip), with text drawn from a Zipf-
distributed vocabulary and a few planted words of known frequency, then times
``chat.search.conversations_search`` (what the sidebar calls: matching, ordering and
snippets) for several kinds of query.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from chat import search
from chat.models import Conversation, Message
from tests.bench import harness

# Planted words: (word, share of messages that contain it).
PLANTED = {"kubernetes": 0.01, "fsync": 0.001, "quasar": 0.0001}
TITLE_WORD = "budget"  # in 2 % of titles, never in a message

QUERIES = [
    ("rare word (0.1 % of messages)", "fsync"),
    ("very rare word (0.01 %)", "quasar"),
    ("word in 1 % of messages", "kubernetes"),
    ("common word", None),  # filled in with the vocabulary's most frequent word
    ("prefix of a common word", None),  # its first three letters
    ("two words (AND)", None),  # kubernetes + a common word
    ("title only", TITLE_WORD),
    ("no match", "zzyzxq"),
]


@dataclass
class Options:
    conversations: int = 10_000
    messages: int = 4
    repeat: int = 30
    seed: int = 42
    scan: bool = False  # time the fallback (icontains) instead of the index


@dataclass
class Row:
    label: str
    query: str
    hits: int
    times_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class Results:
    options: Options
    vendor: str
    backend: str
    messages: int
    seed_s: float
    rows: list[Row]


def throwaway_database(tmpdir: Path) -> contextlib.AbstractContextManager[None]:
    """Point this process at a new, migrated database and drop it afterwards: a SQLite
    file in ``tmpdir``, or ``searchbench_<pid>`` on the server DATABASE_URL names."""
    return harness.throwaway_database(tmpdir, name="searchbench")


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        if word not in seen and word not in PLANTED and len(word) > 1:
            seen.add(word)
            words.append(word)
    return words


class _Text:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = _vocabulary(rng)
        # Zipf: the k-th word is 1/k as frequent as the first.
        self.weights = [1 / (k + 1) for k in range(len(self.words))]

    def sentence(self, count: int) -> str:
        words = self.rng.choices(self.words, weights=self.weights, k=count)
        for word, share in PLANTED.items():
            if self.rng.random() < share:
                words[self.rng.randrange(len(words))] = word
        return " ".join(words).capitalize() + "."


def seed(options: Options, log: Callable[[str], None] = lambda _: None) -> tuple[Any, _Text]:
    rng = random.Random(options.seed)
    text = _Text(rng)
    users = get_user_model()
    owner = users.objects.create_user(f"searchbench-{rng.randrange(10**9)}")
    other = users.objects.create_user(f"searchbench-other-{rng.randrange(10**9)}")
    plan = [(owner, options.conversations), (other, max(1, options.conversations // 10))]
    for user, count in plan:
        for start in range(0, count, 1000):
            batch = [
                Conversation(
                    owner=user,
                    title=(f"{TITLE_WORD} " if rng.random() < 0.02 else "")
                    + " ".join(rng.choices(text.words[:500], k=rng.randint(2, 6))),
                )
                for _ in range(min(1000, count - start))
            ]
            Conversation.objects.bulk_create(batch)
            rows = []
            for conversation in batch:
                for m in range(options.messages):
                    user_turn = m % 2 == 0
                    rows.append(
                        Message(
                            conversation=conversation,
                            turn=m // 2 + 1,
                            role="user" if user_turn else "assistant",
                            content=text.sentence(rng.randint(8, 40))
                            if user_turn
                            else " ".join(text.sentence(rng.randint(8, 25)) for _ in range(6)),
                        )
                    )
            Message.objects.bulk_create(rows, batch_size=2000)
            log(f"seeded {start + len(batch)} / {count} conversations of {user.username}")
    if connection.vendor == "postgresql" and connection.get_autocommit():
        # What autovacuum does soon after a bulk load: statistics, and the GIN index's
        # pending list merged (else every search scans it).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE chat_conversation")
            cursor.execute("VACUUM ANALYZE chat_message")
    return owner, text


def measure(owner: Any, text: _Text, repeat: int) -> list[Row]:
    # The most frequent word of at least five letters (its prefix is then a real prefix).
    common = next(word for word in text.words if len(word) >= 5)
    queries = []
    for label, query in QUERIES:
        if query is None:
            query = {
                "common word": common,
                "prefix of a common word": common[:3],
                "two words (AND)": f"kubernetes {common}",
            }[label]
        queries.append((label, query))
    rows = []
    for label, query in queries:
        hits = len(search.conversations_search(owner=owner, query=query))  # warm-up
        row = Row(label, query, hits)
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            search.conversations_search(owner=owner, query=query)
            row.times_ms.append((time.perf_counter() - started) * 1000)
        rows.append(row)
    return rows


def run_bench(options: Options, log: Callable[[str], None] = lambda _: None) -> Results:
    started = time.perf_counter()
    owner, text = seed(options, log)
    seed_s = time.perf_counter() - started
    log(f"seeded in {seed_s:.1f} s; searching ({options.repeat} runs per query)")
    search.forced_backend = "scan" if options.scan else ""
    try:
        rows = measure(owner, text, options.repeat)
        backend = search.backend()
    finally:
        search.forced_backend = ""
    return Results(
        options=options,
        vendor=connection.vendor,
        backend=backend,
        messages=Message.objects.count(),
        seed_s=seed_s,
        rows=rows,
    )


def report(results: Results) -> str:
    o = results.options
    lines = [
        f"Search benchmark: {o.conversations:,} conversations × {o.messages} messages for the "
        f"searching user (+ {max(1, o.conversations // 10):,} of another user), "
        f"{results.messages:,} messages in all; database {results.vendor}, "
        f"search backend {results.backend}; {o.repeat} runs per query "
        f"(seeding took {results.seed_s:.1f} s).",
        "",
        "| query | text | conversations found (max 30) | median ms | p95 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for row in results.rows:
        lines.append(
            f"| {row.label} | `{row.query}` | {row.hits} | {row.median:.1f} | {row.p95:.1f} |"
        )
    return "\n".join(lines) + "\n"
