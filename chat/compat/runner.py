"""A compatibility check started from a page, run in the server process as a task.

The progress lives in the database (``capabilities["running"]``, see ``report``) so any
worker can answer the page's polling; the task saves each result as it comes, plus a
heartbeat, and replaces the report when done.  Only the ``running`` key is written while
the check runs (read-modify-write in a transaction), so the previous report stays
readable and any other key of ``capabilities`` is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction

from chat.models import EndpointProfile

from .check import run_check
from .probes import PROBES
from .report import REPORT_KEYS, is_running, now_iso

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 5.0

# Checks started by this process, by profile id (also keeps the tasks referenced).
_tasks: dict[str, asyncio.Task[None]] = {}


class CheckBusy(Exception):
    """A check of this profile is already running (here or in another process)."""


def local_task(profile_id: Any) -> asyncio.Task[None] | None:
    task = _tasks.get(str(profile_id))
    return task if task is not None and not task.done() else None


def _write_running(profile_id: Any, running: dict[str, Any]) -> bool:
    """Save the progress; False when another check has taken over this profile."""
    with transaction.atomic():
        profile = (
            EndpointProfile.objects.select_for_update().only("capabilities").filter(pk=profile_id)
        ).first()
        if profile is None:
            return False
        caps = dict(profile.capabilities or {})
        current = caps.get("running")
        if isinstance(current, dict) and current.get("token") != running["token"]:
            return False
        caps["running"] = running
        EndpointProfile.objects.filter(pk=profile_id).update(capabilities=caps)
        return True


def _write_report(profile_id: Any, token: str, report: dict[str, Any] | None) -> None:
    """Replace the report (or, with None, just drop the progress) if still ours."""
    with transaction.atomic():
        profile = (
            EndpointProfile.objects.select_for_update().only("capabilities").filter(pk=profile_id)
        ).first()
        if profile is None:
            return
        caps = dict(profile.capabilities or {})
        current = caps.get("running")
        if isinstance(current, dict) and current.get("token") != token:
            return
        caps.pop("running", None)
        if report is not None:
            caps = {k: v for k, v in caps.items() if k not in REPORT_KEYS}
            caps.update(report)
        EndpointProfile.objects.filter(pk=profile_id).update(capabilities=caps)


def _claim(profile_id: Any, running: dict[str, Any]) -> bool:
    """Mark the profile as being checked, unless a live check already runs."""
    with transaction.atomic():
        profile = EndpointProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None or is_running(profile.capabilities or {}):
            return False
        caps = dict(profile.capabilities or {})
        caps["running"] = running
        EndpointProfile.objects.filter(pk=profile_id).update(capabilities=caps)
        return True


class _Progress:
    def __init__(self, profile_id: Any, running: dict[str, Any]) -> None:
        self.profile_id = profile_id
        self.running = running
        self.lock = asyncio.Lock()
        self.ours = True

    async def save(self) -> None:
        async with self.lock:
            if not self.ours:
                return
            self.running["heartbeat"] = now_iso()
            # A copy: the loop keeps appending while the database thread serialises.
            snapshot = copy.deepcopy(self.running)
            self.ours = await database_sync_to_async(_write_running)(self.profile_id, snapshot)

    async def add(self, result: dict[str, Any]) -> None:
        self.running["results"].append(result)
        await self.save()

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            await self.save()


async def _main(profile_id: Any, endpoint: Any, model: str, running: dict[str, Any]) -> None:
    progress = _Progress(profile_id, running)
    beat = asyncio.create_task(progress.beat())
    try:
        outcome = await run_check(
            endpoint, model, on_result=progress.add, timeout=settings.COMPAT_PROBE_TIMEOUT
        )
    except asyncio.CancelledError:
        raise  # the process is stopping: the progress goes stale and shows interrupted
    except Exception:
        log.exception("compatibility check of profile %s failed", profile_id)
        await database_sync_to_async(_write_report)(profile_id, running["token"], None)
        return
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    report = {
        "checked_at": now_iso(),
        "started_at": running["started_at"],
        "model": outcome["model"],
        "duration_ms": outcome["duration_ms"],
        "limit_field": outcome["limit_field"],
        "results": outcome["results"],
    }
    async with progress.lock:
        await database_sync_to_async(_write_report)(profile_id, running["token"], report)


async def start_check(profile: EndpointProfile, model: str) -> asyncio.Task[None]:
    """Claim the profile and start its check as a task of this process; raises
    ``CheckBusy`` when a check of it is already running."""
    key = str(profile.pk)
    if local_task(key) is not None:
        raise CheckBusy
    started = now_iso()
    running = {
        "token": uuid.uuid4().hex,
        "model": model,
        "started_at": started,
        "heartbeat": started,
        "total": len(PROBES),
        "results": [],
    }
    # Plain sync_to_async: this runs in the request (channels' wrapper would close the
    # request's database connection, inside a test's transaction too).
    if not await sync_to_async(_claim)(profile.pk, copy.deepcopy(running)):
        raise CheckBusy
    endpoint = profile.endpoint()
    # A fresh context: inherited from the request, asgiref's thread-sensitive context would
    # send the task's database calls to that request's (finished) thread and hang.
    task = asyncio.create_task(
        _main(profile.pk, endpoint, model, running),
        name=f"compat-{key}",
        context=contextvars.Context(),
    )
    _tasks[key] = task
    task.add_done_callback(lambda t: _tasks.pop(key, None) if _tasks.get(key) is t else None)
    return task
