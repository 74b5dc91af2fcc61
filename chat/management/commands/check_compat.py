"""``manage.py check_compat <profile id or name> [--model M] [--user U]``: the endpoint
compatibility check of the profile page, from the command line, printed as a table.

The report is saved on the profile (as from the page) unless ``--no-save``;
``--apply`` also applies the suggested settings.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from chat.compat import STATUS_LABELS, apply_changes, run_check, suggested_changes
from chat.compat.report import REPORT_KEYS, is_running, now_iso
from chat.models import EndpointProfile
from chat.upstream import aclose_client

SUMMARY_WIDTH = 72


class Command(BaseCommand):
    help = "Probe an endpoint profile feature by feature and print its compatibility report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("profile", help="The profile's id, or its name")
        parser.add_argument("--model", default="", help="Model to check (default: the profile's)")
        parser.add_argument("--user", default="", help="The owner's username (names may clash)")
        parser.add_argument("--no-save", action="store_true", help="Do not save the report")
        parser.add_argument("--apply", action="store_true", help="Apply the suggested settings")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        profile = self._profile(options["profile"], options["user"])
        if is_running(profile.capabilities or {}) and not options["no_save"]:
            raise CommandError("A check of this profile is running (from the page); wait for it.")
        model = options["model"].strip() or profile.default_model
        model = model or next(iter(profile.model_names), "")
        endpoint = profile.endpoint()
        started = now_iso()

        async def printing(row: dict[str, Any]) -> None:
            if options["verbosity"] >= 2:
                self.stderr.write(f"  {row['feature']}: {STATUS_LABELS[row['status']]}")

        async def check() -> dict[str, Any]:
            try:
                return await run_check(
                    endpoint, model, on_result=printing, timeout=settings.COMPAT_PROBE_TIMEOUT
                )
            finally:
                await aclose_client()

        self.stderr.write(f"Checking {profile.name} ({profile.base_url}) with {model or '?'}…")
        outcome = asyncio.run(check())
        report = {
            "checked_at": now_iso(),
            "started_at": started,
            "model": outcome["model"],
            "duration_ms": outcome["duration_ms"],
            "limit_field": outcome["limit_field"],
            "results": outcome["results"],
        }
        changes = suggested_changes(report["results"], profile.quirks or {})
        if options["json"]:
            self.stdout.write(json.dumps({**report, "suggested": changes}, indent=2))
        else:
            self._print(profile, report, changes)
        if not options["no_save"]:
            self._save(profile, report)
        if options["apply"] and changes:
            profile.quirks = apply_changes(profile.quirks or {}, changes)
            profile.save(update_fields=["quirks", "updated_at"])
            self.stdout.write("Applied the suggested settings.")

    def _profile(self, ref: str, username: str) -> EndpointProfile:
        profiles = EndpointProfile.objects.select_related("owner")
        if username:
            profiles = profiles.filter(owner__username=username)
        try:
            found = list(profiles.filter(pk=uuid.UUID(ref)))
        except ValueError:
            found = list(profiles.filter(name=ref))
        if not found:
            raise CommandError(
                f"No endpoint profile {ref!r}" + (f" of {username}" if username else "")
            )
        if len(found) > 1:
            owners = ", ".join(sorted(p.owner.get_username() for p in found))
            raise CommandError(f"Several profiles are named {ref!r} (owners: {owners}): use --user")
        return found[0]

    def _save(self, profile: EndpointProfile, report: dict[str, Any]) -> None:
        with transaction.atomic():
            fresh = EndpointProfile.objects.select_for_update().get(pk=profile.pk)
            caps = {k: v for k, v in (fresh.capabilities or {}).items() if k not in REPORT_KEYS}
            caps.pop("running", None)
            caps.update(report)
            EndpointProfile.objects.filter(pk=profile.pk).update(capabilities=caps)
        profile.capabilities = caps

    def _print(
        self, profile: EndpointProfile, report: dict[str, Any], changes: list[dict[str, Any]]
    ) -> None:
        rows = report["results"]
        feature_width = max(len(r["feature"]) for r in rows)
        status_width = max(len(label) for label in STATUS_LABELS.values())
        head = (
            f"{'Feature':<{feature_width}}  {'Status':<{status_width}}  {'HTTP':>4}  {'ms':>6}  "
            "Evidence"
        )
        out = [
            f"{profile.name}: {report['model']} in {report['duration_ms'] / 1000:.1f} s",
            head,
            "-" * (len(head) + SUMMARY_WIDTH - len("Evidence")),
        ]
        indent = " " * (feature_width + status_width + 18)
        for r in rows:
            evidence = r["summary"]
            lines = textwrap.wrap(evidence, SUMMARY_WIDTH) or [""]
            ms = "" if r.get("ms") is None else str(r["ms"])
            label = STATUS_LABELS[r["status"]]
            http = str(r.get("http_status") or "")
            out.append(f"{r['feature']:<{feature_width}}  {label:<{status_width}}  {http:>4}  "
                       f"{ms:>6}  {lines[0]}")  # fmt: skip
            out += [indent + line for line in lines[1:]]
        if changes:
            out.append("")
            out.append("Suggested settings:")
            for c in changes:
                out.append(f"  {c['label']}: {c['old_shown']} -> {c['new_shown']} ({c['why']})")
        else:
            out.append("")
            out.append("The profile's settings already fit this report.")
        self.stdout.write("\n".join(out))
