"""The endpoint quirks table (chat/quirks.py): its rows, the accessor, and the form, the
compatibility report and the upstream Endpoint built from it."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chat import quirks as quirk_table
from chat.compat.base import SUPPORTED, UNSUPPORTED
from chat.compat.report import suggested_changes
from chat.forms import EndpointProfileForm
from chat.models import EndpointProfile
from chat.quirks import BOOL, BY_NAME, CHOICE, NAMES, QUIRKS, quirk

ROOT = Path(__file__).resolve().parents[2]


def base_data(**overrides):
    data = {
        "name": "Gateway",
        "base_url": "https://gw.example/v1",
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "60",
    }
    data.update(overrides)
    return data


def posted(q, value):
    """``value`` of quirk ``q`` as a browser posts it (a box not ticked: absent)."""
    if q.kind == BOOL:
        return {q.field_name: "on"} if value else {}
    if q.kind == NAMES:
        return {q.field_name: ", ".join(value)}
    return {q.field_name: value}


def not_default(q):
    if q.kind == BOOL:
        return not q.default
    if q.kind == NAMES:
        return ("seed", "top_logprobs")
    return q.choices[-1][0]


# --------------------------------------------------------------------------- the table


def test_every_quirk_has_a_default_a_label_and_help():
    assert [q.name for q in QUIRKS] == [
        "max_tokens_field", "include_usage", "system_role", "model_optional", "drop_params",
        "reasoning_field", "default_api", "responses", "responses_system",
    ]  # fmt: skip
    assert set(BY_NAME) == {q.name for q in QUIRKS}
    for q in QUIRKS:
        assert q.kind in (CHOICE, BOOL, NAMES), q.name
        assert q.label and q.help and q.title, q.name
        assert q.read(q.default) == q.default, q.name  # the default is well formed
        if q.kind == CHOICE:
            assert q.choices[0][0] == q.default, q.name
            assert len({v for v, _ in q.choices}) == len(q.choices) >= 2, q.name


def test_the_accessor_gives_the_defaults_for_an_empty_dict():
    expected = {
        "max_tokens_field": "max_tokens",
        "include_usage": True,
        "system_role": "system",
        "model_optional": False,
        "drop_params": (),
        "reasoning_field": "auto",
        "default_api": "chat",
        "responses": True,
        "responses_system": "instructions",
    }
    for stored in ({}, None):
        assert {q.name: quirk(stored, q.name) for q in QUIRKS} == expected
    profile = EndpointProfile(quirks={})
    assert {q.name: profile.quirk(q.name) for q in QUIRKS} == expected
    assert profile.model_optional is False


def test_a_stored_value_wins_and_a_malformed_one_is_the_default():
    stored = {
        "max_tokens_field": "max_completion_tokens",
        "include_usage": False,  # also what a run learns (chat.runs.persist)
        "system_role": "",
        "drop_params": ["seed", 3, "n"],
        "reasoning_field": None,
        "model_optional": True,
    }
    assert quirk(stored, "max_tokens_field") == "max_completion_tokens"
    assert quirk(stored, "include_usage") is False
    assert quirk(stored, "system_role") == "system"
    assert quirk(stored, "drop_params") == ("seed", "n")
    assert quirk({"drop_params": "seed"}, "drop_params") == ()
    assert quirk(stored, "reasoning_field") == "auto"
    assert quirk(stored, "model_optional") is True
    with pytest.raises(KeyError):
        quirk(stored, "no_such_quirk")


def test_no_module_restates_a_quirk_default():
    # Quirks are read through quirks.quirk() / EndpointProfile.quirk(), whose defaults are
    # the table's: a `quirks.get(name, default)` elsewhere would be a second default.
    pattern = re.compile(r"quirks(?: or \{\}\))?\.get\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "chat").rglob("*.py")
        if path.name != "quirks.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []


def test_the_table_is_a_low_layer_and_models_may_import_upstream():
    # chat.models imports chat.quirks and chat.upstream at module level: no cycle while
    # neither (nor the fake that upstream loads for the demo) imports anything else of chat.
    code = (
        "import sys, chat.quirks, chat.upstream, chat.fake_upstream; "
        "print(sorted(m for m in sys.modules if m.startswith('chat.') and not "
        "m.startswith(('chat.quirks', 'chat.upstream', 'chat.fake_upstream'))))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the form


@pytest.mark.django_db
def test_the_form_offers_exactly_the_tables_quirks(owner):
    form = EndpointProfileForm(owner=owner)
    offered = {name: field for name, field in form.fields.items() if name.startswith("quirk_")}
    assert set(offered) == {q.field_name for q in QUIRKS}
    for q in QUIRKS:
        field = offered[q.field_name]
        assert (field.label, field.help_text, field.required) == (q.label, q.help, False)
        assert form.initial[q.field_name] == q.form_initial(q.default)
        if q.kind == CHOICE:
            assert list(field.choices) == list(q.choices)
    # Where the page shows them: the model's quirk by the model, the rest at the end.
    names = list(form.fields)
    assert names.index("quirk_model_optional") == names.index("default_model") + 1
    assert names[-8:] == [q.field_name for q in QUIRKS if q.name != "model_optional"]


@pytest.mark.django_db
def test_the_endpoint_page_shows_every_quirk_with_its_label_and_help(owner_client):
    from django.urls import reverse
    from django.utils.html import escape

    page = owner_client.get(reverse("chat:endpoint_new")).content.decode()
    for q in QUIRKS:
        assert f'name="{q.field_name}"' in page
        assert escape(q.label) in page and escape(q.help) in page


@pytest.mark.django_db
def test_a_form_round_trip_saves_each_quirk(owner):
    profile = EndpointProfile.objects.create(
        owner=owner, name="Gateway", base_url="https://gw.example/v1", quirks={"later": 1}
    )
    data = base_data()
    for q in QUIRKS:
        data.update(posted(q, not_default(q)))
    form = EndpointProfileForm(data, instance=profile, owner=owner)
    assert form.is_valid(), form.errors
    form.save()
    profile.refresh_from_db()
    for q in QUIRKS:
        assert profile.quirk(q.name) == not_default(q), q.name
    assert profile.quirks["drop_params"] == ["seed", "top_logprobs"]  # JSON: a list
    assert profile.quirks["later"] == 1  # a key the form does not know is kept
    again = EndpointProfileForm(instance=profile, owner=owner)
    for q in QUIRKS:
        assert again.initial[q.field_name] == q.form_initial(not_default(q)), q.name

    # And back: every quirk at its default; one saved only when set is gone.
    data = base_data()
    for q in QUIRKS:
        data.update(posted(q, q.default))
    form = EndpointProfileForm(data, instance=profile, owner=owner)
    assert form.is_valid(), form.errors
    form.save()
    profile.refresh_from_db()
    assert profile.quirks == {
        "later": 1,
        **{q.name: q.stored(q.default) for q in QUIRKS if q.saved_when_default},
    }
    assert "model_optional" not in profile.quirks


@pytest.mark.django_db
def test_a_blank_choice_saves_the_default_and_a_bad_name_is_refused(owner):
    data = base_data(quirk_system_role="", quirk_max_tokens_field="", quirk_drop_params="")
    form = EndpointProfileForm(data, owner=owner)
    assert form.is_valid(), form.errors
    profile = form.save()
    assert profile.quirks["system_role"] == "system"
    assert profile.quirks["max_tokens_field"] == "max_tokens"
    assert profile.quirks["drop_params"] == []
    assert profile.quirks["include_usage"] is False  # a box not ticked
    form = EndpointProfileForm(base_data(quirk_drop_params="seed, top-p"), owner=owner)
    assert not form.is_valid()
    assert form.errors["quirk_drop_params"] == ["Not a parameter name: top-p"]


# --------------------------------------------------------------------------- the report


def rows(**statuses):
    return [{"key": key, "status": status, "facts": {}} for key, status in statuses.items()]


def test_the_compat_reports_suggestions_start_from_the_tables_defaults():
    refused = rows(max_tokens=UNSUPPORTED, max_completion_tokens=SUPPORTED,
                   system_role=UNSUPPORTED, developer_role=SUPPORTED)  # fmt: skip
    changes = {c["name"]: c for c in suggested_changes(refused, {})}
    assert set(changes) == {"max_tokens_field", "system_role"}
    for name, new in (("max_tokens_field", "max_completion_tokens"), ("system_role", "developer")):
        assert changes[name]["old"] == BY_NAME[name].default
        assert changes[name]["new"] == new
        assert changes[name]["label"] == BY_NAME[name].title
    assert suggested_changes(refused, {"max_tokens_field": "max_completion_tokens",
                                       "system_role": "developer"}) == []  # fmt: skip


def test_the_compat_report_follows_a_changed_default(monkeypatch):
    # The report restates no default: change the table's and its suggestions follow.
    refused = rows(system_role=SUPPORTED, developer_role=UNSUPPORTED, stream_usage=SUPPORTED)
    refused[-1]["facts"] = {"usage": {"total_tokens": 3}}
    assert suggested_changes(refused, {}) == []
    for name, default in (("system_role", "developer"), ("include_usage", False)):
        monkeypatch.setitem(BY_NAME, name, dataclasses.replace(BY_NAME[name], default=default))
    changes = {c["name"]: (c["old"], c["new"]) for c in suggested_changes(refused, {})}
    assert changes == {"system_role": ("developer", "system"), "include_usage": (False, True)}


# --------------------------------------------------------------------------- the endpoint


def test_the_profile_builds_its_upstream_endpoint():
    profile = EndpointProfile(
        base_url="https://gw.example/v1",
        connect_timeout=3.0,
        first_byte_timeout=30.0,
        idle_timeout=15.0,
        quirks={"reasoning_field": "reasoning_content"},
    )
    profile.api_key = "sk-test-abcdefgh"
    profile.extra_headers = {"X-Team": "t1"}
    endpoint = profile.endpoint()
    assert (endpoint.base_url, endpoint.api_key, endpoint.headers) == (
        "https://gw.example/v1", "sk-test-abcdefgh", {"X-Team": "t1"}
    )  # fmt: skip
    assert (endpoint.connect_timeout, endpoint.first_byte_timeout, endpoint.idle_timeout) == (
        3.0, 30.0, 15.0
    )  # fmt: skip
    assert endpoint.reasoning_field == "reasoning_content"
    profile.quirks = {}
    assert profile.endpoint().reasoning_field == quirk_table.BY_NAME["reasoning_field"].default
