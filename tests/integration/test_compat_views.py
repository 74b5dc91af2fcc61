"""The compatibility report on the profile page: started from the page as a task of the
server process, polled while it runs, saved on the profile, and its suggested settings
applied by the owner; the same from ``manage.py check_compat``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from io import StringIO

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from chat.compat import PROBE_KEYS, apply_changes, run_check, suggested_changes
from chat.compat import runner as compat_runner
from chat.models import EndpointProfile
from chat.upstream import Endpoint, aclose_client, get_client, set_transport

pytestmark = pytest.mark.django_db(transaction=True)

STATUS = re.compile(r'<tr class="compat-row" data-key="(\w+)" data-status="(\w+)">')


def make_profile(owner, personality: str = "reasoning", model: str = "demo-fast", **kw):
    return EndpointProfile.objects.create(
        owner=owner,
        name=kw.pop("name", f"Fake {personality}"),
        base_url=f"http://fake.invalid/{personality}/v1",
        default_model=model,
        models_cache=["demo", "demo-fast", "demo-slow"],
        **kw,
    )


def report_for(personality: str, model: str = "demo-fast") -> dict:
    async def check() -> dict:
        try:
            return await run_check(Endpoint(f"http://fake.invalid/{personality}/v1"), model)
        finally:
            await aclose_client()

    outcome = async_to_sync(check)()
    return {
        "checked_at": timezone.now().isoformat(),
        "started_at": timezone.now().isoformat(),
        "model": outcome["model"],
        "duration_ms": outcome["duration_ms"],
        "limit_field": outcome["limit_field"],
        "results": outcome["results"],
    }


@pytest.fixture
async def web(owner) -> AsyncIterator[AsyncClient]:
    client = AsyncClient()
    await client.aforce_login(owner)
    yield client
    # The task and the views used asgiref's database thread: leave no session open.
    await sync_to_async(connections.close_all)()


def rows(html: str) -> dict[str, str]:
    return dict(STATUS.findall(html))


def section(html: str) -> str:
    match = re.search(r'<section id="compat".*?</section>', html, re.S)
    assert match, "the compatibility section is on the page"
    return match.group(0)


# --------------------------------------------------------------------------- the task


@pytest.fixture
def held_seed():
    """Probes to ``held.test`` go to the in-process fake (same path), but the seed probe
    waits until the test sets the returned event: the table is then necessarily half
    filled while the test looks, however fast or slow the machine."""
    release = asyncio.Event()
    release.held = 0  # how many probes were held: the hold must have happened

    async def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if isinstance(body, dict) and "seed" in body:
            release.held += 1
            await release.wait()
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        reply = await get_client().request(
            request.method, request.url.copy_with(host="fake.invalid"),
            headers=headers, content=request.content,
        )  # fmt: skip
        framing = ("content-length", "transfer-encoding", "content-encoding")
        keep = {k: v for k, v in reply.headers.items() if k not in framing}
        return httpx.Response(reply.status_code, headers=keep, content=reply.content)

    set_transport(httpx.MockTransport(handler))
    yield release
    set_transport(None)


async def test_a_check_started_from_the_page_fills_in_then_is_saved(owner, web, held_seed):
    profile = await asyncio.to_thread(make_profile, owner, "no-stream-options", "demo")
    profile.base_url = "http://held.test/no-stream-options/v1"
    await profile.asave(update_fields=["base_url"])
    start = reverse("chat:compat_start", args=[profile.pk])
    panel = reverse("chat:compat_panel", args=[profile.pk])

    response = await web.post(start, {"model": ""}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-state="running"' in html and 'hx-trigger="every 500ms"' in html
    assert f'hx-get="{panel}"' in html
    assert set(rows(html).values()) == {"pending"}

    seen_partial = False
    async with asyncio.timeout(60):  # a safety net only
        while True:
            html = (await web.get(panel)).content.decode()
            found = rows(html)
            done = [k for k, v in found.items() if v != "pending"]
            if 'data-state="running"' in html and 0 < len(done) < len(PROBE_KEYS):
                seen_partial = True  # the table fills in row by row
                assert re.search(rf"{len(done)} of {len(PROBE_KEYS)} probes done", html)
                held_seed.set()  # seen half filled: the held probe may answer now
            if 'data-state="done"' in html:
                break
            await asyncio.sleep(0.1)
    assert seen_partial and held_seed.held
    assert "hx-trigger" not in section(html)  # the finished report stops the polling
    assert rows(html)["stream_usage"] == "unsupported"
    assert rows(html)["chat"] == "supported"
    assert "Apply suggested settings" in html and "Ask for usage while streaming" in html

    await profile.arefresh_from_db()
    caps = profile.capabilities
    assert "running" not in caps
    assert caps["model"] == "demo" and caps["checked_at"]
    assert [r["key"] for r in caps["results"]] == list(PROBE_KEYS)
    assert compat_runner.local_task(profile.pk) is None


async def test_a_second_start_while_one_runs_is_refused(owner, web):
    profile = await asyncio.to_thread(make_profile, owner, "full", "demo")
    start = reverse("chat:compat_start", args=[profile.pk])
    first = await web.post(start, {"model": "demo"}, headers={"HX-Request": "true"})
    task = compat_runner.local_task(profile.pk)
    assert task is not None
    second = await web.post(start, {"model": "demo"}, headers={"HX-Request": "true"})
    assert "already running" in second.content.decode()
    assert 'data-state="running"' in first.content.decode()
    await asyncio.wait_for(task, 20)
    await profile.arefresh_from_db()
    assert profile.capabilities["model"] == "demo" and "running" not in profile.capabilities


def test_progress_without_a_heartbeat_shows_interrupted_and_a_check_can_start_again(
    owner_client, owner
):
    profile = make_profile(owner)
    old = (timezone.now() - timedelta(minutes=5)).isoformat()
    profile.capabilities = {
        "running": {
            "token": "t", "model": "demo", "started_at": old, "heartbeat": old,
            "total": len(PROBE_KEYS), "results": [],
        }
    }  # fmt: skip
    profile.save()
    html = owner_client.get(reverse("chat:compat_panel", args=[profile.pk])).content.decode()
    assert 'data-state="interrupted"' in html and "hx-trigger" not in html
    assert "Check again" in html
    now = timezone.now().isoformat()
    assert compat_runner._claim(profile.pk, {"token": "new", "heartbeat": now, "results": []})
    profile.refresh_from_db()
    assert profile.capabilities["running"]["token"] == "new"
    assert not compat_runner._claim(profile.pk, {"token": "3rd", "heartbeat": now, "results": []})


def test_progress_writes_stop_when_another_check_took_over(owner):
    profile = make_profile(owner)
    assert compat_runner._claim(profile.pk, {"token": "a", "results": []})
    assert compat_runner._write_running(profile.pk, {"token": "a", "results": [1]})
    profile.capabilities = {**profile.capabilities, "running": {"token": "b", "results": []}}
    profile.save()
    assert not compat_runner._write_running(profile.pk, {"token": "a", "results": [1, 2]})
    compat_runner._write_report(profile.pk, "a", {"results": [], "checked_at": "x"})
    profile.refresh_from_db()
    assert profile.capabilities["running"]["token"] == "b"  # untouched by the old check


# --------------------------------------------------------------------------- the page


def test_the_profile_page_shows_the_saved_report_and_what_applying_changes(owner_client, owner):
    profile = make_profile(owner, quirks={"drop_params": ["seed"]})
    profile.capabilities = {**report_for("reasoning"), "other": "kept"}
    profile.save()
    html = owner_client.get(reverse("chat:endpoint_edit", args=[profile.pk])).content.decode()
    panel = section(html)
    found = rows(panel)
    assert found["max_tokens"] == "unsupported" and found["system_role"] == "unsupported"
    assert found["max_completion_tokens"] == "supported"
    assert "Unsupported parameter: &#x27;max_tokens&#x27;" in panel  # the provider's words
    assert "hx-trigger" not in panel
    changes = dict(re.findall(r'<tr data-name="(\w+)"><th scope="row">([^<]+)</th>', panel))
    assert changes == {
        "max_tokens_field": "Max tokens field",
        "system_role": "System prompt role",
        "drop_params": "Never send",
    }
    # What changes is shown before applying: now -> after, and why.
    assert "<td><code>seed</code></td><td><code>logprobs, top_logprobs</code></td>" in panel
    assert "refused: logprobs, top_logprobs; accepted now: seed" in panel
    assert "<td><code>max_tokens</code></td><td><code>max_completion_tokens</code></td>" in panel
    assert "Apply suggested settings" in panel


def test_apply_sets_the_quirks_the_report_suggests(owner_client, owner):
    profile = make_profile(owner)
    report = report_for("reasoning")
    profile.capabilities = report
    profile.save()
    url = reverse("chat:compat_apply", args=[profile.pk])

    stale = owner_client.post(url, {"checked_at": "2001-01-01T00:00:00+00:00"}, follow=True)
    assert "The report changed" in stale.content.decode()
    profile.refresh_from_db()
    assert profile.quirks == {}

    response = owner_client.post(url, {"checked_at": report["checked_at"]}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("chat:endpoint_edit", args=[profile.pk])
    html = response.content.decode()
    assert "Applied the suggested settings" in html
    profile.refresh_from_db()
    assert profile.quirks == {
        "max_tokens_field": "max_completion_tokens",
        "system_role": "developer",
        "drop_params": ["logprobs", "top_logprobs"],
    }
    # The form below shows the new settings, and the report now fits.
    assert re.search(r'<option value="max_completion_tokens" selected>', html)
    assert re.search(r'<option value="developer" selected>', html)
    assert 'value="logprobs, top_logprobs"' in html
    assert "already fit this report" in section(html)


def test_the_profile_page_without_a_report_offers_the_check(owner_client, owner):
    profile = make_profile(owner)
    html = owner_client.get(reverse("chat:endpoint_edit", args=[profile.pk])).content.decode()
    panel = section(html)
    assert 'data-state="none"' in panel and "Not checked yet" in panel
    assert "Check compatibility" in panel and 'value="demo-fast"' in panel
    assert 'hx-post="' + reverse("chat:compat_start", args=[profile.pk]) in panel
    listing = owner_client.get(reverse("chat:endpoints")).content.decode()
    assert reverse("chat:endpoint_edit", args=[profile.pk]) + "#compat" in listing


def test_another_users_profile_is_a_404_and_unchanged(client, owner, outsider):
    profile = make_profile(owner)
    profile.capabilities = report_for("reasoning")
    profile.save()
    client.force_login(outsider)
    panel = reverse("chat:compat_panel", args=[profile.pk])
    assert client.get(panel).status_code == 404
    for name in ("chat:compat_start", "chat:compat_apply"):
        body = {"checked_at": profile.capabilities["checked_at"], "model": "demo"}
        assert client.post(reverse(name, args=[profile.pk]), body).status_code == 404
    before = profile.capabilities
    profile.refresh_from_db()
    assert profile.quirks == {} and profile.capabilities == before


# --------------------------------------------------------------------------- suggestions


def test_suggestions_start_from_the_current_settings():
    results = report_for("system-only")["results"]
    quirks = {"system_role": "developer", "include_usage": False, "drop_params": ["seed", "x"]}
    changes = {c["name"]: (c["old"], c["new"]) for c in suggested_changes(results, quirks)}
    assert changes == {
        "system_role": ("developer", "system"),
        "include_usage": (False, True),  # accepted, and usage does arrive
        "drop_params": (["seed", "x"], ["x"]),  # seed works; x was not probed: kept
    }
    applied = apply_changes(quirks, suggested_changes(results, quirks))
    assert suggested_changes(results, applied) == []


# --------------------------------------------------------------------------- the command


def test_the_command_prints_a_table_and_saves_the_report(owner):
    profile = make_profile(owner, name="Reasoning")
    out, err = StringIO(), StringIO()
    call_command("check_compat", "Reasoning", stdout=out, stderr=err)
    text = out.getvalue()
    lines = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "not supported" in lines["max_tokens"] and "400" in lines["max_tokens"]
    assert " supported " in lines["max_completion_tokens"]
    assert "not supported" in lines["system role"]
    assert "Max tokens field: max_tokens -> max_completion_tokens" in text
    profile.refresh_from_db()
    assert profile.capabilities["model"] == "demo-fast"
    assert len(profile.capabilities["results"]) == len(PROBE_KEYS)
    assert profile.quirks == {}

    call_command("check_compat", str(profile.pk), "--model", "demo", "--apply", stdout=out)
    profile.refresh_from_db()
    assert profile.capabilities["model"] == "demo"
    assert profile.quirks["max_tokens_field"] == "max_completion_tokens"


def test_the_command_finds_profiles_by_owner_and_says_when_it_cannot(owner, outsider):
    make_profile(owner, "full", name="Shared name")
    mine = make_profile(outsider, "no-images", name="Shared name")
    with pytest.raises(CommandError, match="Several profiles"):
        call_command("check_compat", "Shared name", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="No endpoint profile"):
        call_command("check_compat", "Nope", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("check_compat", "Shared name", "--user", "outsider", "--json", "--no-save",
                 stdout=out, stderr=StringIO())  # fmt: skip
    report = json.loads(out.getvalue())
    assert {r["key"]: r["status"] for r in report["results"]}["image"] == "unsupported"
    mine.refresh_from_db()
    assert mine.capabilities == {}
