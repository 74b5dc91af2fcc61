"""Untrusted text in a real Chromium: model replies (streamed, then rendered), conversation
titles (sidebar, heading, <title>), endpoint names and tool calls (names, arguments, results,
mock results; saved and streamed), and import files (every field that reaches a page, and
files that must be refused), with every payload of the corpus.

Nothing may run: no dialog, no ``window.__xss``, no Content-Security-Policy violation (the
CSP would block an injected inline script, so a violation means markup got through), no
dangerous element or attribute in the DOM, and no request to any other origin (remote
images in model markdown are never fetched)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chat import turns
from chat.conversations import conversation_create
from chat.models import Conversation, EndpointProfile, Message
from chat.render import render_markdown

from .xss_payloads import HOSTILE_IMPORTS, IMPORT_SINKS, PAYLOADS, import_document

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BATCH = 12  # payloads per streamed reply

INIT = """
window.__xss = 0;
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push([e.violatedDirective, e.blockedURI, e.sample].join(" "));
});
"""

# Dangerous things in a document, whether or not they ran: (doc) => [findings].
SCAN = """
(doc) => {
  const bad = [];
  const urlAttrs = ["href", "src", "action", "formaction", "xlink:href", "data", "background",
                    "poster", "srcset", "srcdoc", "ping"];
  for (const el of doc.querySelectorAll("*")) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      const value = a.value.replace(/[\\s\\u0000-\\u001f]/g, "").toLowerCase();
      if (name.startsWith("on")) bad.push(`${el.tagName} ${name}`);
      if (urlAttrs.includes(name) && /^(javascript|vbscript|data):/.test(value)
          && !(el.tagName === "LINK" && name === "href")) {
        bad.push(`${el.tagName} ${name}=${a.value.slice(0, 40)}`);
      }
      if (name === "srcdoc") bad.push(`${el.tagName} srcdoc`);
    }
  }
  for (const s of doc.querySelectorAll("script")) {
    const src = s.getAttribute("src") || "";
    if (!src.startsWith("/static/") || s.textContent.trim()) {
      bad.push("script " + (src || s.textContent.slice(0, 40)));
    }
  }
  const untrusted = ".msg-body, .msg-error, .tool-call, .tool-results label, .conv-list a, "
    + ".conv-title, td > a, option, h1, title";
  const forbidden = "script, style, iframe, frame, object, embed, img, svg, math, form, input, "
    + "textarea, select, link, meta, base, template, video, audio, source, details, marquee";
  for (const region of doc.querySelectorAll(untrusted)) {
    const where = region.className || region.tagName;
    for (const el of region.querySelectorAll(forbidden)) bad.push(`${el.tagName} in ${where}`);
    for (const el of region.querySelectorAll("*")) {
      for (const a of el.attributes) {
        if (/^(data-)?(hx|ws)-/.test(a.name)) bad.push(`${el.tagName} ${a.name} in ${where}`);
      }
    }
  }
  for (const link of doc.querySelectorAll(".conv-list a, td > a, h1, title")) {
    if (link.children.length) bad.push(`markup inside ${link.tagName} ${link.className}`);
  }
  return bad;
}
"""

# Many pages at once: fetched and parsed (not run) in the page, then scanned.
PARSE_ALL = (
    """
async (paths) => {
  const scan = """
    + SCAN
    + """;
  const one = async (path) => {
    const response = await fetch(path);
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const h1 = doc.querySelector("h1");
    return [path, response.status, doc.title, h1 ? h1.textContent : null, scan(doc)];
  };
  const out = [];
  for (let i = 0; i < paths.length; i += 6) {
    out.push(...(await Promise.all(paths.slice(i, i + 6).map(one))));
  }
  return out;
}
"""
)


class Watch:
    """Everything the page does that would betray an injection."""

    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.findings: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.add_init_script(INIT)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request) -> None:
        if not request.url.startswith((self.origin, "data:")):
            self.foreign.append(request.url)

    def check(self, where: str) -> None:
        state = self.page.evaluate("() => [window.__xss, window.__csp]")
        if state[0]:
            self.findings.append(f"{where}: window.__xss was set")
        self.findings += [f"{where}: CSP violation {v}" for v in state[1]]
        self.findings += [f"{where}: {b}" for b in self.page.evaluate(f"({SCAN})(document)")]

    def visit(self, path: str) -> None:
        self.page.goto(self.origin + path)
        self.page.wait_for_load_state("load")
        self.check(path)

    def parse_all(self, paths: list[str]) -> dict[str, tuple[int, str, str | None]]:
        """Pages fetched and parsed in the browser (quicker than a visit each): their
        status, <title> and <h1> as the browser reads them, and any finding."""
        pages = {}
        for path, status, title, h1, bad in self.page.evaluate(PARSE_ALL, paths):
            pages[path] = (status, title, h1)
            self.findings += [f"{path} (parsed): {b}" for b in bad]
        return pages


def make_world():
    owner = get_user_model().objects.create_user("ada", password="a-long-passphrase-42")
    demo = EndpointProfile.objects.get(owner=owner, is_demo=True)
    conversations = []
    for payload in PAYLOADS:
        conversation = conversation_create(owner=owner, profile=demo, model="demo")
        conversation.title = turns.title_from(payload)
        conversation.save()
        Message.objects.create(conversation=conversation, turn=1, role="user", content=payload)
        lane = conversation.lanes.get()
        Message.objects.create(
            conversation=conversation,
            lane=lane,
            turn=1,
            role="assistant",
            model="demo",
            content=payload,
            rendered=render_markdown(payload),
            status="complete",
            finish_reason="stop",
        )
        # Tool calls and results are untrusted too: a name, arguments and a result
        # (turn 2, answered), then a call still waiting for its result (turn 3: the
        # results form, with the payload as the tool's saved mock result).
        name = payload[:64]
        conversation.tools = [
            {"tool": {"type": "function", "function": {"name": name}}, "mock": payload}
        ]
        conversation.save()
        for turn, call_id in ((2, "call_done"), (3, "call_open")):
            Message.objects.create(conversation=conversation, turn=turn, role="user", content="go")
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": payload},
            }
            Message.objects.create(
                conversation=conversation,
                lane=lane,
                turn=turn,
                role="assistant",
                model="demo",
                status="complete",
                finish_reason="tool_calls",
                tool_calls=[call],
            )
        Message.objects.create(
            conversation=conversation,
            lane=lane,
            turn=2,
            role="tool",
            tool_call_id="call_done",
            name=name,
            content=payload,
        )
        conversations.append(conversation)
    profiles = []
    for number, payload in enumerate(PAYLOADS):
        name = f"{number} {payload}"[:100]
        profile = EndpointProfile(owner=owner, name=name, base_url="http://fake.invalid/v1")
        profile.default_model = payload[:200]
        profile.models_cache = [payload, "demo"]
        profile.save()
        profiles.append(profile)
    stream_here = conversation_create(owner=owner, profile=demo, model="demo")
    Message.objects.create(conversation=stream_here, turn=1, role="user", content="start")
    stream_here.title = "Streaming checks"
    stream_here.save()
    client = Client()
    client.force_login(owner)
    return client.cookies["sessionid"].value, conversations, profiles, stream_here


def test_untrusted_text_never_runs_in_the_browser(app_server, page):
    session, conversations, profiles, stream_here = make_world()
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": app_server}])
    watch = Watch(page, app_server)

    # (c) Endpoint names: the list, the new-conversation picker and a few edit pages, run;
    # every edit page parsed (<title>, heading, form values).
    watch.visit("/endpoints/")
    watch.visit("/")
    for profile in profiles[::20]:
        watch.visit(f"/endpoints/{profile.pk}/")
    parsed = watch.parse_all([f"/endpoints/{p.pk}/" for p in profiles])
    for profile in profiles:
        status, title, h1 = parsed[f"/endpoints/{profile.pk}/"]
        assert status == 200
        assert title == " ".join(f"{profile.name} · Playground".split())
        assert h1 == profile.name

    # (b) Titles: the sidebar (every title, on every page), a few conversation pages run,
    # every one parsed: <title>, heading, and the saved reply rendered from markdown.
    for conversation in conversations[::15]:
        watch.visit(f"/c/{conversation.pk}/")
        assert page.title() == f"{conversation.title} · Playground"
        assert page.locator("h1.conv-title").inner_text() == conversation.title
        assert page.locator('[data-role="assistant"] .msg-body').count() == 1
        assert page.locator('[data-role="tool"] .tool-result').count() == 1
        assert page.locator(".tool-call .tool-args").count() == 2
        assert page.locator("form.tool-results").count() == 1  # the pending call
    sidebar = page.locator(".conv-list a").all_inner_texts()
    assert {c.title for c in conversations} <= set(sidebar)
    parsed = watch.parse_all([f"/c/{c.pk}/" for c in conversations])
    for conversation in conversations:
        status, title, h1 = parsed[f"/c/{conversation.pk}/"]
        assert status == 200
        assert title == f"{conversation.title} · Playground"
        assert h1 == conversation.title

    # (a) Replies through the whole streaming path: deltas, then the final render.
    watch.visit(f"/c/{stream_here.pk}/")
    batches = [PAYLOADS[i : i + BATCH] for i in range(0, len(PAYLOADS), BATCH)]
    for number, batch in enumerate(batches, start=1):
        reply = "\n\n".join(batch)
        directive = json.dumps({"reply": reply, "tps": 1500, "ttft_ms": 0})
        page.locator("#composer-input").fill(f"Batch {number}\n@fake {directive}")
        page.get_by_role("button", name="Send").click()
        answer = page.locator('[data-role="assistant"]').nth(number - 1)
        answer.and_(page.locator('[data-status="complete"]')).wait_for()
        watch.check(f"streamed batch {number}")
        assert "<" in reply and answer.locator(".msg-body").count() == 1
    # Streamed tool calls: names and arguments as they grow, then the final render.
    calls = [{"name": p[:64], "arguments": p} for p in PAYLOADS[:BATCH]]
    directive = json.dumps({"tool_calls": calls, "tps": 1500, "ttft_ms": 0})
    page.locator("#composer-input").fill(f"Tools\n@fake {directive}")
    page.get_by_role("button", name="Send").click()
    answer = page.locator('[data-role="assistant"]').nth(len(batches))
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    assert answer.locator(".tool-call").count() == BATCH
    watch.check("streamed tool calls")
    # A reload renders the saved replies from the database.
    watch.visit(f"/c/{stream_here.pk}/")
    assert (
        page.locator('[data-role="assistant"][data-status="complete"]').count() == len(batches) + 1
    )

    assert watch.dialogs == []
    assert watch.foreign == [], "requests to other origins (remote images must not load)"
    assert watch.findings == []
    assert not page.problems, page.problems

    # The control: the same watch does see markup that gets through.
    page.evaluate(
        """() => document.querySelector("#messages").insertAdjacentHTML("beforeend",
          '<div class="msg-body"><img src="https://attacker.example/p.png" '
          + 'onerror="window.__xss=1"><a href="javascript:alert(1)">x</a></div>')"""
    )
    # The CSP's violation event is queued after the insertion: wait for it, not a while.
    page.wait_for_function("() => window.__csp.length > 0")
    watch.check("injected")
    text = "\n".join(watch.findings)
    assert "CSP violation" in text, text  # the inline handler was blocked by the CSP
    assert "IMG onerror" in text and "javascript:" in text and "IMG in msg-body" in text


def test_imported_files_never_run_in_the_browser(app_server, page, tmp_path):
    """An import file is as untrusted as model output: every payload in every sink of the
    format (IMPORT_SINKS), imported through the Import page; then files of the wrong shape
    (a choice with HTML and non-text content: issue 16), refused and shown back."""
    owner = get_user_model().objects.create_user("ada", password="a-long-passphrase-42")
    client = Client()
    client.force_login(owner)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": app_server}]
    )
    watch = Watch(page, app_server)
    assert len(IMPORT_SINKS) >= 15

    path = tmp_path / "import.json"
    path.write_text(json.dumps(import_document()))
    watch.visit("/import/")
    page.locator("#import-file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    page.get_by_text(f"Imported {len(PAYLOADS)} conversations.").wait_for()
    watch.check("after the import")
    conversations = list(Conversation.objects.filter(owner=owner).order_by("created_at"))
    assert len(conversations) == len(PAYLOADS)

    for conversation in conversations[::15]:
        watch.visit(f"/c/{conversation.pk}/")
        assert page.locator("h1.conv-title").inner_text() == conversation.title
        assert page.locator(".choices .choice").count() == 2  # n > 1, both shown
        assert page.locator(".tool-call .tool-args").count() == 1
        assert page.locator('[data-role="tool"] .tool-result').count() == 1
        assert page.locator(".msg-error").count() == 1
    parsed = watch.parse_all([f"/c/{c.pk}/" for c in conversations])
    for conversation in conversations:
        status, title, h1 = parsed[f"/c/{conversation.pk}/"]
        assert status == 200 and h1 == conversation.title
    # The inspector shows the imported request body and raw response.
    answers = Message.objects.filter(
        conversation__owner=owner, role="assistant", turn=1, lane__position=0
    )
    inspected = watch.parse_all([f"/c/{m.conversation_id}/m/{m.pk}/inspect/" for m in answers])
    assert {status for status, _, _ in inspected.values()} == {200}
    # The leaderboard shows the imported votes' endpoint and model names: text only.
    watch.visit("/leaderboard/")
    cells = page.locator("table.leaderboard td:nth-child(2)")  # after the rank
    assert cells.count() == len(PAYLOADS) + 1  # each payload's lane A, and "… · other"
    assert page.locator("table td *").count() == 0

    for number, (document, where) in enumerate(HOSTILE_IMPORTS):
        watch.visit("/import/")
        page.locator("#import-text").fill(json.dumps(document))
        page.get_by_role("button", name="Import").click()
        errors = page.locator(".import-errors")
        errors.wait_for()
        assert where in errors.inner_text(), errors.inner_text()
        assert page.locator("#import-text").input_value() == json.dumps(document)
        watch.check(f"hostile import {number}")
    assert Conversation.objects.filter(owner=owner).count() == len(PAYLOADS)

    assert watch.dialogs == []
    assert watch.foreign == [], "requests to other origins (remote images must not load)"
    assert watch.findings == []
    # A refused import answers 400, which Chromium logs: those, and nothing else.
    refused = "Failed to load resource: the server responded with a status of 400"
    assert [p for p in page.problems if refused not in p] == [], page.problems
    assert len(page.problems) == len(HOSTILE_IMPORTS)
