"""Endpoint compatibility report: probe an endpoint feature by feature, keep the report
on its profile, and suggest the profile's quirks from it.

- ``probes``: one small request per feature and how its status is decided;
- ``check.run_check``: runs them (bounded concurrency, a timeout each);
- ``report``: the saved shape, the suggested settings, what the page shows;
- ``runner.start_check``: a check started from a page, as a task of the server process.
"""

from __future__ import annotations

from .base import DIFFERENT, INCONCLUSIVE, STATUS_LABELS, STATUSES, SUPPORTED, UNSUPPORTED
from .check import CONCURRENCY, PROBE_TIMEOUT, probe_endpoint, run_check
from .probes import PROBE_KEYS, PROBES
from .report import apply_changes, panel_context, suggested_changes

__all__ = [
    "CONCURRENCY",
    "DIFFERENT",
    "INCONCLUSIVE",
    "PROBES",
    "PROBE_KEYS",
    "PROBE_TIMEOUT",
    "STATUSES",
    "STATUS_LABELS",
    "SUPPORTED",
    "UNSUPPORTED",
    "apply_changes",
    "panel_context",
    "probe_endpoint",
    "run_check",
    "suggested_changes",
]
