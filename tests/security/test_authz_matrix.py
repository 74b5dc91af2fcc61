"""Authorization matrix: every URL of the project and every websocket action, tried by a
second user against the first user's objects.

URLs are enumerated from the resolver, so a new one cannot be forgotten: a URL with no
entry in ROUTES (or a path argument not in KWARG_KINDS) fails the test with what to add.
Each object-scoped request must answer 404 (405 for a method the view does not take) and
change nothing in the database; the same request on the second user's own objects must
NOT be a 404 (so the 404s really come from ownership, not from a wrong URL).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from chat import conversations, runs
from chat.models import Conversation, EndpointProfile, Lane, Message, Preset
from chat.sockets.consumers import ConversationConsumer

pytestmark = pytest.mark.django_db

VICTIM_MARKS = ("VICTIM-CONVERSATION", "VICTIM-ENDPOINT", "VICTIM-PRESET", "VICTIM-TEXT")


@dataclass(frozen=True)
class Ref:
    """A form field or query parameter that names an object of ``kind``.

    ``form``: a form field with a scoped queryset, which refuses a foreign id as a form
    error ("Select a valid choice") rather than a 404."""

    kind: str
    form: bool = False


@dataclass(frozen=True)
class Route:
    post: dict[str, Any] = field(default_factory=dict)  # the POST body (Refs allowed)
    query: dict[str, Any] = field(default_factory=dict)  # the query string (Refs allowed)
    fixed: dict[str, Any] = field(default_factory=dict)  # non-object path arguments


# Path arguments that name objects, by argument name.
KWARG_KINDS = {
    "conversation_id": "conversation",
    "profile_id": "profile",
    "message_id": "message",
    "preset_id": "preset",
    "lane_id": "lane",
}

# Public by design: no account needed (their CSRF is still checked below).
PUBLIC = {"login", "setup", "signup", "chat:healthz", "chat:shared"}

# Every other URL of the project. Add an entry for a new URL: path arguments named in
# KWARG_KINDS are filled in automatically; say which body/query fields name objects.
ROUTES: dict[str, Route] = {
    "logout": Route(),
    "password_change": Route(post={"old_password": "x", "new_password1": "y"}),
    "password_change_done": Route(),
    "chat:index": Route(),
    "chat:conversation_new": Route(
        post={"profile": Ref("profile", form=True), "model": "demo", "content": "hi"}
    ),
    "chat:conversation": Route(),
    "chat:conversation_settings": Route(post={"system_prompt": "PWNED"}),
    "chat:conversation_mode": Route(post={"mode": "completion"}),
    "chat:conversation_delete": Route(),
    "chat:model_options": Route(query={"profile": Ref("profile")}),
    "chat:endpoints": Route(),
    "chat:endpoint_new": Route(post={"name": ""}),
    "chat:endpoint_edit": Route(post={"name": "PWNED", "base_url": "http://evil.test/v1"}),
    "chat:endpoint_delete": Route(),
    "chat:endpoint_test": Route(),
    "chat:endpoint_models": Route(),
    # The request surface (parameter panel, presets, inspector, code export, n > 1).
    "chat:params_save": Route(post={"param:temperature": "0.5"}),
    "chat:preset_save": Route(post={"preset_name": "PWNED", "param:temperature": "0.5"}),
    "chat:preset_apply": Route(post={"preset": Ref("preset")}),
    "chat:preset_delete": Route(post={"preset": Ref("preset")}),
    "chat:draft_code": Route(post={"content": "hi"}),
    "chat:message_inspect": Route(),
    "chat:message_code": Route(),
    "chat:message_source": Route(),
    "chat:version_show": Route(fixed={"turn": 1, "branch": 0}),
    "chat:message_branch": Route(),
    "chat:message_delete": Route(),
    "chat:message_choose": Route(fixed={"index": 1}),
    # Tools.
    "chat:tools_save": Route(post={"tool_json": "{}", "tool_choice": "auto"}),
    "chat:tools_edit": Route(post={"add": ""}),
    "chat:tools_panel": Route(query={"tools_lane": Ref("lane")}),
    "chat:tools_shared": Route(post={"tools_lane": Ref("lane")}),
    # The compatibility report of an endpoint (chat/compat).
    "chat:compat_panel": Route(),
    "chat:compat_start": Route(post={"model": "demo"}),
    "chat:compat_apply": Route(post={"checked_at": "2020-01-01T00:00:00+00:00"}),
    # Comparison (chat/views/compare.py).
    "chat:params_panel": Route(query={"panel_lane": Ref("lane")}),
    "chat:lane_add": Route(),
    "chat:lane_duplicate": Route(),
    "chat:lane_remove": Route(),
    "chat:lane_move": Route(fixed={"direction": "right"}),
    "chat:lane_settings": Route(post={"model": "PWNED"}),
    "chat:lane_sweep": Route(post={"param": "temperature", "values": "0, 1"}),
    "chat:attempt_show": Route(fixed={"turn": 1, "attempt": 0}),
    "chat:blind_toggle": Route(post={"blind": "on"}),
    "chat:vote": Route(fixed={"turn": 1}, post={"verdict": "tie"}),
    "chat:diff": Route(fixed={"turn": 1}, query={"a": "0", "b": "0"}),
    "chat:setup_link": Route(),
    # Not about an object: a new comparison from a setup, and the user's own leaderboard.
    "chat:setup_open": Route(),
    "chat:leaderboard": Route(),
    # The history: sidebar, search, rename / pin / delete, export / import, share links.
    "chat:history_list": Route(query={"offset": "0"}),
    "chat:history_search": Route(query={"q": "victim"}),
    "chat:history_rename": Route(post={"title": "PWNED"}),
    "chat:history_pin": Route(post={"pinned": "1"}),
    "chat:history_delete": Route(),
    "chat:export_json": Route(),
    "chat:export_markdown": Route(),
    "chat:export_all": Route(),
    "chat:import": Route(post={}),  # an empty form: refused, writes nothing
    "chat:share": Route(),
    "chat:share_revoke": Route(),
    # Public (a share link needs no account): a token nobody has is a 404.
    "chat:shared": Route(fixed={"token": "no-such-token"}),
}

# Every action the consumer dispatches, with the frame fields that name objects.
WS_ACTIONS: dict[str, dict[str, Any]] = {
    "send": {"content": 'hi from the outsider\n@fake {"tps": 0, "ttft_ms": 0, "tokens": 3}'},
    "stop": {"message": Ref("streaming_message")},
    "tool_results": {"message": Ref("tool_answer"), "result:call_0": "PWNED"},
    "regenerate": {"lane": "0"},
    "edit": {"message": Ref("message"), "content": "PWNED"},
    "sync": {"messages": Ref("tool_answer")},
}


# --------------------------------------------------------------------------- the world


@dataclass
class Side:
    user: Any
    profile: EndpointProfile
    conversation: Conversation
    message: Message
    preset: Preset
    # The last answer of another conversation, with a tool call waiting for its result.
    tool_answer: Message | None = None
    lane: Lane | None = None

    def ref(self, kind: str) -> Any:
        obj = getattr(self, kind, None)
        assert obj is not None, f"no {kind!r} object in the test world: add one to make_side"
        return str(obj.pk)


def _has_field(model: Any, name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def make_side(django_user_model, name: str, mark: str) -> Side:
    user = django_user_model.objects.create_user(name, password="pw-" + name * 3)
    profile = EndpointProfile(
        owner=user,
        name=f"{mark}-ENDPOINT",
        base_url="http://fake.invalid/v1",
        default_model="demo",
        models_cache=["demo"],
    )
    profile.api_key = f"sk-{name}-secret-key-0000"
    profile.save()
    conversation = conversations.conversation_create(owner=user, profile=profile, model="demo")
    conversation.title = f"{mark}-CONVERSATION"
    conversation.save()
    lane = Lane.objects.get(conversation=conversation)
    Message.objects.create(conversation=conversation, turn=1, role="user", content="question")
    message = Message(
        conversation=conversation,
        lane=lane,
        turn=1,
        role="assistant",
        model="demo",
        content=f"{mark}-TEXT",
        rendered=f"<p>{mark}-TEXT</p>",
        status="complete",
        finish_reason="stop",
        request_body={"model": "demo", "messages": [{"role": "user", "content": "question"}]},
    )
    if _has_field(Message, "choices"):
        message.choices = [
            {"index": i, "content": f"{mark}-TEXT {i}", "finish_reason": "stop", "logprobs": None}
            for i in range(2)
        ]
    message.save()
    preset = Preset.objects.create(owner=user, name=f"{mark}-PRESET", params={"temperature": 1})
    tools = conversations.conversation_create(owner=user, profile=profile, model="demo")
    Message.objects.create(conversation=tools, turn=1, role="user", content="weather?")
    function = {"name": f"{mark}_TOOL", "arguments": "{}"}
    call = {"id": "call_0", "type": "function", "function": function}
    tool_answer = Message.objects.create(
        conversation=tools,
        lane=Lane.objects.get(conversation=tools),
        turn=1,
        role="assistant",
        model="demo",
        status="complete",
        finish_reason="tool_calls",
        tool_calls=[call],
    )
    return Side(user, profile, conversation, message, preset, tool_answer, lane)


@pytest.fixture
def world(django_user_model):
    victim = make_side(django_user_model, "victim", "VICTIM")
    outsider = make_side(django_user_model, "outsider", "OUTSIDER")
    return victim, outsider


def db_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table but sessions (logging in and out writes those), and
    users' last_login (set by each login)."""
    snapshot = {}
    for model in apps.get_models():
        if model._meta.label == "sessions.Session":
            continue
        rows = list(model.objects.order_by("pk").values())
        for row in rows:
            row.pop("last_login", None)
        snapshot[model._meta.label] = rows
    return snapshot


# --------------------------------------------------------------------------- routes


@dataclass
class Found:
    name: str
    route: str
    kwargs: list[str]


def enumerate_urls() -> list[Found]:
    found: list[Found] = []

    def walk(patterns: list[Any], prefix: str, namespaces: list[str]) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                if route.startswith("admin/"):
                    continue  # Django's admin: staff only, its own permission system
                ns = namespaces + [entry.namespace] if entry.namespace else namespaces
                walk(entry.url_patterns, route, ns)
            elif isinstance(entry, URLPattern):
                name = ":".join([*namespaces, entry.name]) if entry.name else f"<unnamed {route}>"
                kwargs = list(getattr(entry.pattern, "converters", {}))
                kwargs += re.findall(r"\(\?P<(\w+)>", route) if not kwargs else []
                found.append(Found(name, route, kwargs))

    walk(get_resolver().url_patterns, "", [])
    return found


def test_every_url_is_in_the_matrix():
    urls = enumerate_urls()
    names = {u.name for u in urls}
    assert {"chat:conversation", "chat:endpoint_edit", "logout"} <= names, "enumeration works"
    missing = [u for u in urls if u.name not in ROUTES and u.name not in PUBLIC]
    assert not missing, (
        "URLs without an authorization test: add them to ROUTES in "
        f"{__file__} (name: Route(...), see the comment above ROUTES): "
        + ", ".join(f"{u.name} ({u.route})" for u in missing)
    )
    for url in urls:
        if url.name in PUBLIC:
            continue
        fixed = ROUTES[url.name].fixed
        unknown = [k for k in url.kwargs if k not in KWARG_KINDS and k not in fixed]
        assert not unknown, (
            f"{url.name} ({url.route}) has path arguments {unknown}: add them to KWARG_KINDS "
            f"(if they name an object) or to its Route(fixed=...) in {__file__}"
        )


@dataclass
class Slot:
    where: str  # "path" | "post" | "query"
    key: str
    ref: Ref


def slots_of(url: Found, spec: Route) -> list[Slot]:
    slots = [Slot("path", k, Ref(KWARG_KINDS[k])) for k in url.kwargs if k not in spec.fixed]
    slots += [Slot("post", k, v) for k, v in spec.post.items() if isinstance(v, Ref)]
    slots += [Slot("query", k, v) for k, v in spec.query.items() if isinstance(v, Ref)]
    return slots


def build(url: Found, spec: Route, slots: list[Slot], owners: tuple[Side, ...]):
    kwargs = dict(spec.fixed)
    post = {k: v for k, v in spec.post.items() if not isinstance(v, Ref)}
    query = {k: v for k, v in spec.query.items() if not isinstance(v, Ref)}
    for slot, side in zip(slots, owners, strict=True):
        value = side.ref(slot.ref.kind)
        {"path": kwargs, "post": post, "query": query}[slot.where][slot.key] = value
    return reverse(url.name, kwargs=kwargs), post, query


def _no_runs(monkeypatch):
    async def no_run(action, **options):  # the matrix checks access, not generation
        return []

    monkeypatch.setattr(runs, "start", no_run)


# The sync test client consumes the async export stream itself, and says so.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")
def test_a_second_user_gets_404_for_every_url_of_the_first(world, client, monkeypatch):
    victim, outsider = world
    _no_runs(monkeypatch)
    urls = [u for u in enumerate_urls() if u.name in ROUTES]
    client.force_login(outsider.user)
    before = db_snapshot()
    tried: list[tuple[str, str, int, tuple[str, ...]]] = []
    problems: list[str] = []

    for url in urls:
        spec = ROUTES[url.name]
        slots = slots_of(url, spec)
        combos = list(itertools.product((victim, outsider), repeat=len(slots)))
        combos = [c for c in combos if victim in c] if slots else [()]
        for owners in combos:
            path, post, query = build(url, spec, slots, owners)
            for method in ("GET", "POST"):
                client.force_login(outsider.user)
                if method == "GET":
                    response = client.get(path, query)
                else:
                    response = client.post(path + _qs(query), post)
                status = response.status_code
                who = tuple("victim" if o is victim else "own" for o in owners)
                tried.append((url.name, method, status, who))
                raw = b"".join(response) if response.streaming else response.content
                body = raw.decode(errors="replace")
                leaked = [m for m in VICTIM_MARKS if m in body]
                leaked += [str(v) for v in _victim_ids(victim) if str(v) in body]
                if leaked:
                    problems.append(f"{method} {path} {who}: shows {leaked}")
                if status >= 500:
                    problems.append(f"{method} {path} {who}: {status}")
                changed = _changes(before, db_snapshot())
                if changed:
                    problems.append(f"{method} {path} {who}: changed {changed}")
                    before = db_snapshot()  # report each request's own changes
                if not slots:
                    continue
                allowed = {404, 405}
                if all(s.ref.form for s, o in zip(slots, owners, strict=True) if o is victim):
                    # A scoped form field refuses the foreign id as a form error (shown
                    # with 400/422, or 200 for htmx); the database check below is what
                    # proves it was refused.
                    allowed |= {200, 400, 422}
                if status not in allowed:
                    problems.append(f"{method} {path} {who}: {status}, expected {allowed}")

    assert not problems, "\n".join(problems)

    # Controls: the same requests on the second user's own objects are not 404s, and a
    # method refused with 405 there is the only excuse for a 405 above.
    own_status = _control(urls, outsider, client)
    for name, method, status, who in tried:
        if "victim" in who and status == 405:
            assert own_status[(name, method)] == 405, f"{method} {name}: 405 only for others"
    assert len(tried) >= 2 * len(urls)


def _changes(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]):
    """Which rows of which tables differ (inserted, deleted or updated), briefly."""
    changes = []
    for label in before.keys() | after.keys():
        old = {r.get("id", repr(r)): r for r in before.get(label, [])}
        new = {r.get("id", repr(r)): r for r in after.get(label, [])}
        for key in old.keys() | new.keys():
            if old.get(key) != new.get(key):
                a, b = old.get(key) or {}, new.get(key) or {}
                fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
                changes.append(f"{label} {key}: {fields}")
    return changes


def _qs(query: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(query) if query else ""


def _victim_ids(victim: Side) -> list[Any]:
    return [victim.conversation.pk, victim.profile.pk, victim.preset.pk]


def _control(urls: list[Found], outsider: Side, client: Client) -> dict[tuple[str, str], int]:
    statuses = {}
    for url in urls:
        spec = ROUTES[url.name]
        slots = slots_of(url, spec)
        path, post, query = build(url, spec, slots, (outsider,) * len(slots))
        for method in ("GET", "POST"):
            with transaction.atomic():
                client.force_login(outsider.user)
                if method == "GET":
                    response = client.get(path, query)
                else:
                    response = client.post(path + _qs(query), post)
                transaction.set_rollback(True)
            statuses[(url.name, method)] = response.status_code
            assert response.status_code < 500, f"{method} {path}: {response.status_code}"
        if slots:
            assert {statuses[(url.name, m)] for m in ("GET", "POST")} - {404, 405}, (
                f"{url.name}: 404/405 even on the user's own objects; fix its ROUTES entry "
                f"({statuses[(url.name, 'GET')]}, {statuses[(url.name, 'POST')]})"
            )
    return statuses


# --------------------------------------------------------------------------- CSRF


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.hx_headers = ""
        self.has_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.has_body = True
            self.hx_headers = a.get("hx-headers", "")
        if tag == "form":
            self.forms.append({"attrs": a, "csrf": False})
        elif tag == "input" and self.forms and a.get("name") == "csrfmiddlewaretoken":
            self.forms[-1]["csrf"] = bool(a.get("value"))


def test_csrf_is_enforced_on_every_post(world, monkeypatch):
    """Every URL (public ones too) refuses a POST without the token, and every form on
    every page carries it (plain forms as a field, htmx requests as a header)."""
    victim, _ = world
    _no_runs(monkeypatch)
    client = Client(enforce_csrf_checks=True)
    client.force_login(victim.user)
    client.get(reverse("chat:index"))
    token = client.cookies["csrftoken"].value
    before = db_snapshot()
    checked_forms = 0
    for url in enumerate_urls():
        spec = ROUTES.get(url.name, Route())
        slots = slots_of(url, spec) if url.name in ROUTES else []
        if url.name in ROUTES:
            path, post, query = build(url, spec, slots, (victim,) * len(slots))
        else:  # public URLs (and any not mapped yet)
            kwargs = {k: victim.ref(KWARG_KINDS[k]) for k in url.kwargs if k in KWARG_KINDS}
            path, post, query = reverse(url.name, kwargs=kwargs), {}, {}
        response = client.post(path + _qs(query), post)
        assert response.status_code == 403, f"POST {path} without a CSRF token: {response}"
        assert b"CSRF" in response.content
        # The control: the same POST with the token is not refused for CSRF.
        with transaction.atomic():
            ok = client.post(path + _qs(query), post, headers={"X-CSRFToken": token})
            transaction.set_rollback(True)
        assert ok.status_code != 403, f"POST {path} with the token: 403"
        client.force_login(victim.user)  # in case that was the logout
        page = client.get(path, query)
        if page.status_code == 200 and page["Content-Type"].startswith("text/html"):
            checked_forms += _check_forms(path, page.content.decode())
    assert db_snapshot() == before
    assert checked_forms >= 5, "the pages' forms were looked at"


def _check_forms(path: str, html: str) -> int:
    parser = _Forms()
    parser.feed(html)
    count = 0
    for form in parser.forms:
        attrs = form["attrs"]
        if "ws-send" in attrs:
            continue  # goes over the websocket (Origin + session checked), not a POST
        htmx = any(k in attrs for k in ("hx-post", "hx-put", "hx-patch", "hx-delete"))
        if attrs.get("method", "get").lower() != "post" and not htmx:
            continue
        count += 1
        if htmx:
            if not parser.has_body:
                continue  # a partial: it lives in a page whose <body> carries the header
            headers = json.loads(parser.hx_headers or "{}")
            assert headers.get("X-CSRFToken"), f"{path}: htmx form without the CSRF header"
        else:
            assert form["csrf"], f"{path}: a POST form without {{% csrf_token %}}: {attrs}"
    return count


# --------------------------------------------------------------------------- websocket


def consumer_actions() -> set[str]:
    """The action names ConversationConsumer dispatches on in receive (and _act, which
    receive calls) (read from its code, so a new action cannot be forgotten here)."""
    names: set[str] = set()
    methods = [getattr(ConversationConsumer, m, None) for m in ("receive", "_act")]
    sources = [textwrap.dedent(inspect.getsource(m)) for m in methods if m is not None]
    nodes = [node for source in sources for node in ast.walk(ast.parse(source))]
    for node in nodes:
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)):
            continue
        if node.left.id != "action":
            continue
        for comp in node.comparators:
            if isinstance(comp, ast.Constant) and isinstance(comp.value, str):
                names.add(comp.value)
            elif isinstance(comp, ast.Tuple | ast.Set | ast.List):
                names |= {
                    e.value
                    for e in comp.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
    for attr in ("actions", "ACTIONS", "handlers", "HANDLERS"):
        table = getattr(ConversationConsumer, attr, None)
        if isinstance(table, dict):
            names |= {k for k in table if isinstance(k, str)}
    return names


def test_every_websocket_action_is_in_the_matrix():
    actions = consumer_actions()
    assert {"send", "stop"} <= actions, (
        f"could not read the consumer's actions (found {actions}); update consumer_actions()"
    )
    missing = actions - WS_ACTIONS.keys()
    assert not missing, (
        f"websocket actions without an authorization test: add to WS_ACTIONS: {missing}"
    )
