"""First-use journeys of issue 12, in Chromium: each test is one defect a new user hit."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.gates import Gate, use_local_fake
from tests.browser.test_chat_flow import answers, create_first_account, first_answer
from tests.browser.test_compare_browser import add_lane

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lane_sweep_opens_its_dialog_and_the_other_dialogs_still_open(app_server, page):
    create_first_account(page, app_server)
    first_answer(page)
    page.locator(".lane-menu > summary").click()
    page.get_by_role("button", name="Sweep…").click()
    dialog = page.locator("#modal")
    expect(dialog.get_by_role("heading", name="Sweep from lane A")).to_be_visible()
    assert page.locator("#modal-body").count() == 1  # the dialog's body is still there
    expect(page.locator(".lane-menu")).not_to_have_attribute("open", "")  # menu closed
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # Inspect, Code and Diff (sharing the dialog) still open afterwards, without a reload.
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    expect(page.locator("#inspector-request")).to_be_visible()
    assert '"model": "demo"' in page.locator("#inspector-request").inner_text()
    dialog.get_by_role("button", name="Close").click()
    answers(page).first.get_by_role("button", name="Copy this request as code").click()
    expect(dialog.get_by_text("chat/completions").first).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    add_lane(page, 2)
    page.get_by_label("Message").fill('Both\n@fake {"tokens": 4}')
    page.get_by_role("button", name="Send", exact=True).click()
    for index in range(2):
        page.locator("#turn-2 .lane-cell").nth(index).locator('[data-status="complete"]').wait_for()
    page.locator("#summary-2").get_by_role("button", name="Diff").click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Turn 2: A vs B")).to_be_visible()
    assert not page.problems, page.problems


def test_a_blind_vote_right_after_the_answers_finish_is_counted(app_server, page):
    """The vote form arrives over the socket, rendered without a request (so without a
    CSRF token in it): voting from it must still pass the CSRF check."""
    create_first_account(page, app_server)
    first_answer(page)
    add_lane(page, 2)
    page.get_by_role("button", name="Blind").click()
    page.get_by_role("button", name="Blind: on").wait_for()
    page.get_by_label("Message").fill('Which is better?\n@fake {"tokens": 8}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    for index in range(2):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    summary = page.locator("#summary-2")
    summary.get_by_role("button", name="A is better").click()  # the live-rendered form
    summary.get_by_text("Voted").wait_for()
    assert "CSRF verification failed" not in page.content()
    page.get_by_role("link", name="Leaderboard").click()
    expect(page.get_by_role("cell", name="Demo (offline) · demo").first).to_be_visible()
    assert not page.problems, page.problems


def add_endpoint(**fields) -> object:
    from django.contrib.auth import get_user_model

    from chat.models import EndpointProfile

    owner = get_user_model().objects.get(username="ada")
    # The in-process fake serves any base URL on its host: here, only two of its models.
    fields = {"name": "Local llama", "base_url": "http://fake.invalid/v1", **fields}
    return EndpointProfile.objects.create(owner=owner, **fields)


def pick_endpoint(page, name: str) -> None:
    """Pick an endpoint on the New conversation page and wait for its model field."""
    with page.expect_response(lambda r: "/models/?" in r.url):
        page.get_by_label("Endpoint").select_option(label=name)
    page.locator("#model-field").get_by_label("Model").wait_for()


def test_the_model_field_follows_the_endpoint_picked_for_a_new_conversation(app_server, page):
    create_first_account(page, app_server)
    add_endpoint(default_model="demo-fast", models_cache=["demo-fast", "demo-slow"])
    page.goto(app_server + "/")
    model = page.get_by_label("Model")
    assert model.input_value() == "demo"
    page.get_by_label("Endpoint").select_option(label="Local llama")
    expect(model).to_have_value("demo-fast")  # the endpoint's default, not the demo's
    suggestions = page.locator("#model-list option")
    expect(suggestions).to_have_count(2)
    assert [o.get_attribute("value") for o in suggestions.all()] == ["demo-fast", "demo-slow"]

    # A model of the new endpoint's list that the user picked stays when coming back to it.
    model.fill("demo-slow")
    pick_endpoint(page, "Demo (offline)")
    expect(model).to_have_value("demo-slow")  # the demo lists it too
    pick_endpoint(page, "Local llama")
    expect(model).to_have_value("demo-slow")
    model.fill("demo-fast")

    first_answer(page)
    answers(page).first.get_by_role("button", name="Inspect this answer").click()
    assert '"model": "demo-fast"' in page.locator("#inspector-request").inner_text()
    page.get_by_role("button", name="Close").click()
    assert page.get_by_label("Endpoint").locator("option:checked").inner_text() == "Local llama"
    assert not page.problems, page.problems


def test_an_endpoint_without_a_default_gets_its_first_model_or_a_blank(app_server, page):
    create_first_account(page, app_server)
    add_endpoint(models_cache=["demo-slow", "demo-fast"])
    add_endpoint(name="Unlisted")
    page.goto(app_server + "/")
    model = page.get_by_label("Model")
    page.get_by_label("Endpoint").select_option(label="Local llama")
    expect(model).to_have_value("demo-slow")
    page.get_by_label("Endpoint").select_option(label="Unlisted")
    expect(model).to_have_value("")  # nothing known: never the demo's model
    expect(page.locator("#model-list option")).to_have_count(0)
    assert not page.problems, page.problems


def test_a_value_typed_just_before_switching_the_panel_lane_is_saved_to_its_lane(app_server, page):
    create_first_account(page, app_server)
    first_answer(page)
    add_lane(page, 2)
    lane_select = page.locator("#panel-lane-select")
    expect(lane_select.locator("option:checked")).to_have_text("A · demo")
    saves = {"sent": 0, "done": 0}

    def count(key):
        def seen(request):
            if request.url.endswith("/params/") and request.method == "POST":
                saves[key] += 1

        return seen

    page.on("request", count("sent"))
    page.on("requestfinished", count("done"))
    page.on("requestfailed", count("done"))
    # Typed, then the Lane select changed before the panel's 250 ms autosave could leave:
    # both changes in one task of the page, so no machine is slow enough to reorder them.
    page.locator("#param-max_tokens").fill("77")
    page.evaluate(
        """() => {
        document.getElementById("param-max_tokens")
            .dispatchEvent(new Event("change", { bubbles: true }));
        const select = document.getElementById("panel-lane-select");
        select.value = [...select.options].find(o => o.text === "B · demo").value;
        select.dispatchEvent(new Event("change", { bubbles: true }));
        }"""
    )
    expect(lane_select.locator("option:checked")).to_have_text("B · demo")
    expect(page.locator("#param-max_tokens")).to_have_value("")  # B's own: untouched
    # Any late save of the old panel: its 250 ms timer has fired once a 250 ms timer set
    # after it has (timers of equal delay run in order), and it has then been answered.
    page.evaluate("() => new Promise(resolve => setTimeout(resolve, 250))")
    for _ in range(10_000):
        if saves["done"] >= saves["sent"]:
            break
        page.evaluate("0")
    assert saves["sent"] >= 1 and saves["done"] >= saves["sent"], saves
    lane_select.select_option(label="A · demo")
    expect(page.locator("#param-max_tokens")).to_have_value("77")

    # And the requests say so: A sent it, B did not.
    page.get_by_label("Message").fill('Both\n@fake {"tokens": 4}')
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-2 .lane-cell")
    bodies = []
    for index in range(2):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
        cells.nth(index).get_by_role("button", name="Inspect this answer").click()
        bodies.append(json.loads(page.locator("#inspector-request").inner_text()))
        page.get_by_role("button", name="Close").click()
    assert bodies[0]["max_tokens"] == 77
    assert "max_tokens" not in bodies[1]
    assert not page.problems, page.problems


FIRST_TEXT_OFFSET = """el => {
    // How far below the top of the answer's box its first visible character is drawn.
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.search(/\\S/);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + 1);
        return range.getBoundingClientRect().top - el.getBoundingClientRect().top;
    }
    return null;
}"""


def test_an_answer_starting_with_blank_lines_streams_where_it_ends(
    app_server, page, fake_upstream_url
):
    create_first_account(page, app_server)
    use_local_fake(fake_upstream_url)
    page.reload()
    reply = "\r\n\r\nFirst line of the answer.\nSecond line, then more words to stream " * 2
    # Held within its first line until the gate opens: still streaming after the reload.
    gate = Gate(fake_upstream_url)
    directive = gate.script(reply=reply, tps=20, ttft_ms=0, hold_after=8)
    page.get_by_label("Message").fill(f"Blank lines first{directive}")
    page.get_by_role("button", name="Send").click()
    answer = answers(page).first
    answer.and_(page.locator('[data-status="streaming"]')).wait_for()
    body = answer.locator(".msg-body")
    body.get_by_text("First", exact=False).first.wait_for()
    streaming_offset = body.evaluate(FIRST_TEXT_OFFSET)
    assert not body.inner_text().startswith(("\n", "\r")), repr(body.inner_text()[:20])

    # A reload mid-stream: the page's own render, then the run's snapshot, then deltas.
    page.reload()
    answer = answers(page).first
    assert answer.get_attribute("data-status") == "streaming"
    body = answer.locator(".msg-body")
    body.get_by_text("First", exact=False).first.wait_for()
    reloaded_offset = body.evaluate(FIRST_TEXT_OFFSET)

    gate.open()
    answer.and_(page.locator('[data-status="complete"]')).wait_for()
    final_offset = answer.locator(".msg-body").evaluate(FIRST_TEXT_OFFSET)
    assert abs(streaming_offset - final_offset) <= 4, (streaming_offset, final_offset)
    assert abs(reloaded_offset - final_offset) <= 4, (reloaded_offset, final_offset)
    assert not page.problems, page.problems


def test_a_blank_model_is_sent_as_none_where_the_endpoint_has_a_default(app_server, page):
    create_first_account(page, app_server)
    # A server that picks its model itself (the fake's "default-model" personality).
    page.goto(app_server + "/endpoints/new/")
    page.get_by_label("Name").fill("Local server")
    page.get_by_label("Base URL").fill("http://fake.invalid/default-model/v1")
    page.get_by_label("Requests may omit the model").check()
    page.get_by_role("button", name="Save").click()
    page.goto(app_server + "/")
    page.get_by_label("Endpoint").select_option(label="Local server")
    model = page.get_by_label("Model")
    expect(model).to_have_value("")
    expect(model).to_have_attribute("placeholder", "endpoint default")
    first_answer(page, 'No model named\n@fake {"tokens": 5}')

    answer = answers(page).first
    # The head names the model the server says it used, and that it was its default.
    assert answer.locator(".msg-head .who").inner_text().startswith("demo-fast")
    expect(answer.locator(".msg-head")).to_contain_text("endpoint default")
    answer.get_by_role("button", name="Inspect this answer").click()
    body = json.loads(page.locator("#inspector-request").inner_text())
    assert "model" not in body  # nothing sent: the endpoint's default applies
    page.get_by_role("button", name="Close").click()
    head_model = page.locator(".lane-head").get_by_label("Model")
    expect(head_model).to_have_value("")
    expect(head_model).to_have_attribute("placeholder", "endpoint default")
    assert head_model.get_attribute("required") is None
    assert not page.problems, page.problems


def test_a_blank_model_is_refused_clearly_where_the_endpoint_needs_one(app_server, page):
    create_first_account(page, app_server)
    page.get_by_label("Model").fill("")
    page.get_by_label("Message").fill("Keep this text")
    page.get_by_role("button", name="Send").click()
    # The browser's own check stops it first (required); without it the server says why.
    assert page.get_by_label("Model").evaluate("el => el.validity.valueMissing")
    page.get_by_label("Model").evaluate("el => el.removeAttribute('required')")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("This endpoint needs a model id").wait_for()
    assert page.get_by_label("Message").input_value() == "Keep this text"
    # The form comes back with its errors as a 400, which Chromium logs; nothing else.
    assert all("status of 400" in p for p in page.problems), page.problems


def inspected_body(page, answer) -> dict:
    answer.get_by_role("button", name="Inspect this answer").click()
    body = json.loads(page.locator("#inspector-request").inner_text())
    page.get_by_role("button", name="Close").click()
    return body


def test_a_conversation_switches_mode_and_earlier_turns_stay_as_they_were(app_server, page):
    create_first_account(page, app_server)
    first_answer(page, 'A **chat** question\n@fake {"reply": "A **bold** answer."}')
    mode = page.get_by_label("Mode", exact=True)
    expect(mode.locator("option:checked")).to_have_text("Chat")

    mode.select_option(label="Completions")  # the page reloads in the new mode
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
    expect(page.locator(".conv-title .badge")).to_have_text("completions")
    page.get_by_label("Prompt", exact=True).fill('Once upon a time\n@fake {"reply": " **there**"}')
    page.get_by_role("button", name="Send").click()
    answers(page).nth(1).and_(page.locator('[data-status="complete"]')).wait_for()
    body = inspected_body(page, answers(page).nth(1))
    assert "prompt" in body and "messages" not in body  # /v1/completions
    # The first turn is still a chat turn: "You", and its answer rendered as markdown.
    users = page.locator('[data-role="user"] .msg-head .who')
    assert users.all_inner_texts() == ["You", "Prompt"]
    assert answers(page).first.locator(".msg-body strong").inner_text() == "bold"
    assert answers(page).nth(1).locator(".msg-body strong").count() == 0  # plain text

    page.get_by_label("Mode", exact=True).select_option(label="Chat")
    page.get_by_label("Message").fill("Back to chat")
    page.get_by_role("button", name="Send").click()
    answers(page).nth(2).and_(page.locator('[data-status="complete"]')).wait_for()
    body = inspected_body(page, answers(page).nth(2))
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"] * 2 + ["user"]
    assert users.all_inner_texts() == ["You", "Prompt", "You"]
    assert answers(page).nth(1).locator(".msg-body strong").count() == 0
    assert not page.problems, page.problems
