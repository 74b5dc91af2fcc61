"""The saved report: its shape on the profile, the settings it suggests, the page's view.

``profile.capabilities`` holds the last finished check::

    {"checked_at": iso, "started_at": iso, "model": str, "duration_ms": int,
     "limit_field": str | None, "results": [row, ...]}

and, while a check runs, its progress under ``"running"``::

    {"token": str, "model": str, "started_at": iso, "heartbeat": iso, "total": int,
     "results": [row, ...]}   # in the order they finished

A ``running`` entry whose heartbeat is older than ``STALE_AFTER`` seconds belongs to a
check whose process went away: it is shown as interrupted and a new check may start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from chat.quirks import BY_NAME, quirk

from .base import DIFFERENT, STATUS_LABELS, STATUSES, SUPPORTED, UNSUPPORTED
from .probes import PROBES

STALE_AFTER = 30.0
REPORT_KEYS = ("checked_at", "started_at", "model", "duration_ms", "limit_field", "results")

# Probes whose refusal means "never send these", and whose success means they are safe.
DROPPABLE: dict[str, tuple[str, ...]] = {
    "stop": ("stop",),
    "n": ("n",),
    "seed": ("seed",),
    "logprobs": ("logprobs", "top_logprobs"),
    "json_object": ("response_format",),
}


def now_iso() -> str:
    return timezone.now().isoformat()


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def is_stale(running: dict[str, Any], now: datetime | None = None) -> bool:
    beat = parse_time(running.get("heartbeat")) or parse_time(running.get("started_at"))
    if beat is None:
        return True
    return (now or timezone.now()) - beat > timedelta(seconds=STALE_AFTER)


def is_running(capabilities: dict[str, Any]) -> bool:
    running = (capabilities or {}).get("running")
    return isinstance(running, dict) and not is_stale(running)


# --------------------------------------------------------------------------- suggestions


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(value) if value else "(nothing)"
    return str(value)


def suggested_changes(
    results: list[dict[str, Any]], quirks: dict[str, Any]
) -> list[dict[str, Any]]:
    """What the profile's quirks should become, given a report, as a list of changes
    ``{"name", "label", "old", "new", "old_shown", "new_shown", "why"}``; empty when the
    current settings already fit."""
    status = {r["key"]: r["status"] for r in results}
    facts = {r["key"]: r.get("facts") or {} for r in results}
    works = (SUPPORTED, DIFFERENT)
    changes: list[dict[str, Any]] = []

    def change(name: str, old: Any, new: Any, why: str) -> None:
        changes.append(
            {"name": name, "label": BY_NAME[name].title, "old": old, "new": new,
             "old_shown": _shown(old), "new_shown": _shown(new), "why": why}
        )  # fmt: skip

    # Each setting starts from its current value, or the table's default (chat.quirks).
    field = quirk(quirks, "max_tokens_field")
    other = BY_NAME["max_tokens_field"].other(field)
    if status.get(field) == UNSUPPORTED and status.get(other) in works:
        change("max_tokens_field", field, other, f"{field} is refused; {other} works")

    include = quirk(quirks, "include_usage")
    if include and status.get("stream_usage") == UNSUPPORTED:
        change("include_usage", True, False, "stream_options is refused")
    elif not include and status.get("stream_usage") in works and facts["stream_usage"].get("usage"):
        change("include_usage", False, True, "stream_options is accepted and usage arrives")

    role = quirk(quirks, "system_role")
    other_role = BY_NAME["system_role"].other(role)
    if status.get(f"{role}_role") == UNSUPPORTED and status.get(f"{other_role}_role") in works:
        change("system_role", role, other_role, f"the {role} role is refused")

    served = quirk(quirks, "responses")
    if served and status.get("responses") == UNSUPPORTED:
        change("responses", True, False, "POST /responses is refused")
    elif not served and status.get("responses") in works:
        change("responses", False, True, "POST /responses answers")

    current = list(quirk(quirks, "drop_params"))
    dropped = list(current)
    added, removed = [], []
    for key, params in DROPPABLE.items():
        for param in params:
            if status.get(key) == UNSUPPORTED and param not in dropped:
                dropped.append(param)
                added.append(param)
            elif status.get(key) == SUPPORTED and param in dropped:
                dropped.remove(param)
                removed.append(param)
    if dropped != current:
        why = []
        if added:
            why.append(f"refused: {', '.join(added)}")
        if removed:
            why.append(f"accepted now: {', '.join(removed)}")
        change("drop_params", current, dropped, "; ".join(why))
    return changes


def apply_changes(quirks: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {**(quirks or {}), **{c["name"]: c["new"] for c in changes}}


# --------------------------------------------------------------------------- the panel


def _pending_rows(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every probe in report order: finished ones with their result, others pending."""
    by_key = {r["key"]: r for r in done}
    return [by_key.get(p.key) or {"key": p.key, "feature": p.feature, "status": "pending"}
            for p in PROBES]  # fmt: skip


def _decorate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "label": STATUS_LABELS.get(r["status"], "checking…")} for r in rows]


def panel_context(profile: Any) -> dict[str, Any]:
    """What ``chat/_compat.html`` shows for ``profile``: state none | running |
    interrupted | done."""
    caps = profile.capabilities if isinstance(profile.capabilities, dict) else {}
    running = caps.get("running") if isinstance(caps.get("running"), dict) else None
    report = {k: caps[k] for k in REPORT_KEYS if k in caps} if caps.get("results") else None
    context: dict[str, Any] = {
        "profile": profile,
        "report": report,
        "model_choices": profile.model_names,
        "default_model": profile.default_model or next(iter(profile.model_names), ""),
        "statuses": [(s, STATUS_LABELS[s]) for s in STATUSES],
    }
    if running is not None:
        done = [r for r in running.get("results", []) if isinstance(r, dict)]
        state = "interrupted" if is_stale(running) else "running"
        context.update(
            state=state,
            rows=_decorate(_pending_rows(done)),
            done=len(done),
            total=running.get("total") or len(PROBES),
            model=running.get("model", ""),
            started_at=parse_time(running.get("started_at")),
        )
        return context
    if report is None:
        context.update(state="none", rows=[])
        return context
    results = [r for r in report["results"] if isinstance(r, dict)]
    counted = {s: sum(1 for r in results if r.get("status") == s) for s in STATUSES}
    context.update(
        state="done",
        rows=_decorate(results),
        model=report.get("model", ""),
        checked_at=parse_time(report.get("checked_at")),
        checked_at_raw=report.get("checked_at", ""),
        duration_s=(report.get("duration_ms") or 0) / 1000,
        counts=[(s, STATUS_LABELS[s], counted[s]) for s in STATUSES if counted[s]],
        changes=suggested_changes(results, profile.quirks or {}),
    )
    return context
