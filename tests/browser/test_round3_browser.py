"""Everyday UI, round 3, in Chromium."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, EndpointProfile, Lane, Message
from tests.browser.test_chat_flow import create_first_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/ui2-shots"


def second_endpoint() -> EndpointProfile:
    return EndpointProfile.objects.create(
        owner=get_user_model().objects.get(),
        name="Second",
        base_url="http://127.0.0.1:9/v1",
        default_model="second-model",
        models_cache=["second-model", "other-model"],
    )


class Held:
    """Requests to ``pattern`` wait (in the browser) until ``release()``."""

    def __init__(self, page, pattern: str) -> None:
        self.page, self.pattern, self.routes = page, pattern, []
        page.route(pattern, lambda route: self.routes.append(route), times=1)

    def release(self) -> None:
        # Each call to the page lets Playwright dispatch the route it may not have yet.
        for _ in range(1000):
            if self.routes:
                break
            self.page.evaluate("0")
        assert len(self.routes) == 1, "the request never came"
        with self.page.expect_response(self.pattern):
            self.routes.pop().continue_()


def test_a_model_typed_while_the_endpoint_answers_is_kept(app_server, page):
    """Item 3: the Model field arrives after the user typed a model: what was typed stays,
    neither overwritten nor concatenated, typing goes on where it was, and the suggestions
    are the new endpoint's."""
    create_first_account(page, app_server)
    second_endpoint()
    page.reload()
    model = page.get_by_label("Model")
    held = Held(page, "**/models/?*")
    page.get_by_label("Endpoint").select_option(label="Second")
    model.fill("")
    model.press_sequentially("typed-model")
    held.release()
    expect(page.locator("#model-list option")).to_have_count(2)
    expect(model).to_have_value("typed-model")
    expect(model).to_be_focused()
    model.press_sequentially("-2")
    expect(model).to_have_value("typed-model-2")
    page.screenshot(path=f"{SHOTS}/3-new-model-kept.png")

    # Untouched, the field still follows the endpoint picked.
    page.get_by_label("Endpoint").select_option(label="Demo (offline)")
    expect(page.locator("#model-list option")).not_to_have_count(2)
    page.get_by_label("Endpoint").select_option(label="Second")
    expect(model).to_have_value("second-model")
    assert not page.problems, page.problems


def test_typing_into_the_model_field_as_it_arrives_replaces_the_new_default(app_server, page):
    """Item 3, the other moment: the user is in the Model field but has not typed yet when
    the endpoint's default arrives. What they type then replaces it, never goes in front
    of it ("typed-modelsecond-model", seen in a peer journey under load)."""
    create_first_account(page, app_server)
    second_endpoint()
    page.reload()
    model = page.get_by_label("Model")
    held = Held(page, "**/models/?*")
    page.get_by_label("Endpoint").select_option(label="Second")
    model.focus()  # in the field, nothing typed
    held.release()
    expect(model).to_have_value("second-model")
    expect(model).to_be_focused()
    model.press_sequentially("typed-model")
    expect(model).to_have_value("typed-model")
    assert not page.problems, page.problems


def test_a_lane_model_typed_while_its_endpoint_saves_is_kept_and_saved(app_server, page):
    """Item 3 on a conversation page: the lane head comes back from saving the endpoint
    after a model was typed; the typed model stays and is what the lane saves."""
    create_first_account(page, app_server)
    second_endpoint()
    page.reload()
    page.get_by_role("button", name="Parameters").click()
    page.wait_for_url("**/c/*/?open=params")
    lane = Lane.objects.get()
    model = page.locator(f"#lane-head-{lane.pk}").get_by_label("Model")
    held = Held(page, "**/lanes/*/settings/")
    page.locator(f"#lane-head-{lane.pk}").get_by_label("Endpoint").select_option(label="Second")
    model.fill("typed-model")
    held.release()
    expect(page.locator(f"#lane-head-{lane.pk} .save-state")).to_have_text("Saved")
    expect(model).to_have_value("typed-model")
    with page.expect_response("**/lanes/*/settings/"):
        model.press("Tab")
    lane.refresh_from_db()
    assert (lane.profile.name, lane.model) == ("Second", "typed-model")
    page.screenshot(path=f"{SHOTS}/3-lane-model-kept.png")
    assert not page.problems, page.problems


def exported_titles(page, base: str) -> list[str]:
    response = page.request.get(base + "/export/")
    assert response.ok
    return [c["title"] for c in response.json()["conversations"]]


def test_a_conversation_opened_to_set_up_is_listed_and_titled_from_its_first_message(
    app_server, page
):
    """Item 4 (a, d): Parameters from the New page opens a conversation that no history
    lists (sidebar, Export all) while it has no message; the first message titles its
    heading and its tab live, and lists it."""
    create_first_account(page, app_server)
    page.get_by_role("button", name="Parameters").click()
    page.wait_for_url("**/c/*/?open=params")
    heading = page.locator("h1.conv-title")
    expect(heading).to_have_text("Untitled")
    hint = page.get_by_text("Send a message to start.")
    expect(hint).to_be_visible()
    conv_list = page.locator("#conv-list")
    expect(conv_list.locator(".conv-item")).to_have_count(0)
    expect(conv_list).to_contain_text("No conversations yet.")
    assert exported_titles(page, app_server) == []

    page.get_by_label("Message").fill('Hello there\n@fake {"tokens": 3}')
    page.get_by_role("button", name="Send", exact=True).click()
    expect(heading).to_have_text("Hello there")
    expect(heading).to_have_attribute("title", "Hello there")
    expect(page).to_have_title("Hello there · Playground")
    item = conv_list.locator(".conv-item")
    expect(item).to_have_count(1)
    expect(item).to_have_class("conv-item active")
    expect(item.locator(".conv-link")).to_have_text("Hello there")
    page.locator('[data-role="assistant"][data-status="complete"]').wait_for()
    expect(hint).to_be_hidden()
    page.screenshot(path=f"{SHOTS}/4a-titled-live.png")
    assert exported_titles(page, app_server) == ["Hello there"]
    # As it stays after a reload.
    page.reload()
    expect(heading).to_have_text("Hello there")
    assert not page.problems, page.problems


def tool_json(page, index: int):
    return page.locator(f"#tool-json-{index}")


def test_a_tools_name_and_the_tool_choice_follow_its_json(app_server, page):
    """Item 4 (b): renaming a tool in its JSON renames its row and its tool_choice option
    at the autosave; a choice that no longer names a tool stays shown, with why it is
    not saved."""
    create_first_account(page, app_server)
    page.get_by_role("button", name="Tools").click()
    page.wait_for_url("**/c/*/?open=tools")
    page.get_by_role("button", name="Blank").click()
    expect(page.locator("#tool-name-0")).to_have_text("tool_1")
    choice = page.locator("#tool-choice")
    expect(choice.locator("option")).to_have_text(
        ["— not sent (auto)", "auto", "none", "required", "call tool_1"]
    )

    def rename(old: str, new: str) -> None:
        box = tool_json(page, 0)
        box.fill(box.input_value().replace(f'"{old}"', f'"{new}"'))
        with page.expect_response(lambda r: r.url.endswith("/tools/") and r.ok):
            box.press("Tab")

    rename("tool_1", "lookup")
    expect(page.locator("#tool-name-0")).to_have_text("lookup")
    expect(choice.locator("option")).to_have_text(
        ["— not sent (auto)", "auto", "none", "required", "call lookup"]
    )
    expect(choice).to_have_value("")  # the choice made (none yet) stays
    with page.expect_response(lambda r: r.url.endswith("/tools/") and r.ok):
        choice.select_option(label="call lookup")
    expect(page.locator("#tools-status")).to_have_text("Saved")

    rename("lookup", "find")
    expect(page.locator("#tool-name-0")).to_have_text("find")
    expect(choice.locator("option")).to_have_text(
        [
            "— not sent (auto)", "auto", "none", "required", "call find",
            "call lookup (not an enabled tool)",
        ]
    )  # fmt: skip
    expect(choice).to_have_value("function:lookup")
    expect(page.locator("#tool-choice-error")).to_contain_text("lookup")
    expect(page.locator("#tools-status")).to_contain_text("Not saved")
    page.locator("#tools-panel").screenshot(path=f"{SHOTS}/4b-tool-renamed.png")

    with page.expect_response(lambda r: r.url.endswith("/tools/") and r.ok):
        choice.select_option(label="call find")
    expect(page.locator("#tools-status")).to_have_text("Saved")
    expect(choice.locator("option")).to_have_count(5)
    assert not page.problems, page.problems


FADED = """badge => new Promise(done => {
  const faded = () => getComputedStyle(badge).opacity === "0";
  if (faded()) return done(true);
  badge.addEventListener("animationend", () => done(faded()), { once: true });
})"""


def test_saved_fades_and_an_edit_clears_it(app_server, page):
    """Item 4 (c): "Saved" fades out by itself (its animation ends at opacity 0), and the
    next edit clears it at once, before that edit's save answers."""
    create_first_account(page, app_server)
    page.get_by_role("button", name="Parameters").click()
    page.wait_for_url("**/c/*/?open=params")
    status = page.locator("#params-status")
    temperature = page.locator("#param-temperature")
    with page.expect_response(lambda r: r.url.endswith("/params/") and r.ok):
        temperature.fill("0.3")
        temperature.press("Tab")
    expect(status).to_have_text("Saved")
    expect(status).to_have_class("save-state saved")
    page.locator("#params-panel").screenshot(path=f"{SHOTS}/4c-saved-shown.png")
    assert status.evaluate(FADED) is True
    page.locator("#params-panel").screenshot(path=f"{SHOTS}/4c-saved-faded.png")

    # The next edit: the badge goes while its save is still held.
    held = Held(page, "**/params/")
    temperature.fill("0.5")
    expect(status).to_have_text("")
    expect(status).not_to_have_class("save-state saved")
    temperature.press("Tab")
    held.release()
    expect(status).to_have_text("Saved")
    expect(status).to_have_class("save-state saved")
    assert not page.problems, page.problems


def test_the_sidebar_groups_the_history_by_date(app_server, page):
    """Item 17: the sidebar lists the history under date headings (the dates are set)."""
    create_first_account(page, app_server)
    owner = get_user_model().objects.get()
    now = timezone.now()
    for title, days, pinned in [
        ("Pinned plan", 90, True), ("This morning", 0, False), ("Last night", 1, False),
        ("Tuesday's notes", 4, False), ("Two weeks ago", 14, False),
        ("Spring cleaning", 45, False), ("Old draft", 75, False),
    ]:  # fmt: skip
        conversation = Conversation.objects.create(owner=owner, title=title)
        Message.objects.create(conversation=conversation, turn=1, role="user", content="hi")
        Conversation.objects.filter(pk=conversation.pk).update(
            updated_at=now - timedelta(days=days), pinned=pinned
        )
    page.reload()
    headings = page.locator("#conv-list .conv-group")
    months = [(timezone.localtime(now) - timedelta(days=d)).strftime("%B %Y") for d in (45, 75)]
    expect(headings).to_have_text(
        ["Pinned", "Today", "Yesterday", "Previous 7 days", "Previous 30 days", *months]
    )
    assert page.locator("#conv-list h2.conv-group").first.evaluate(
        "h => h.nextElementSibling.textContent.includes('Pinned plan')"
    )
    page.locator("#sidebar").screenshot(path=f"{SHOTS}/17-history-by-date.png")
    assert not page.problems, page.problems


def test_pages_arrive_gzipped_and_export_all_still_downloads(app_server, page):
    """Item 19 in Chromium: the chat page comes gzip-encoded and works; Export all (a
    stream, left uncompressed) downloads whole."""
    create_first_account(page, app_server)
    page.get_by_label("Message").fill('Compress me\n@fake {"tokens": 40}')
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator('[data-role="assistant"][data-status="complete"]').wait_for()
    response = page.reload()
    assert response.headers.get("content-encoding") == "gzip"
    expect(page.locator("h1.conv-title")).to_have_text("Compress me")
    expect(page.locator('[data-role="assistant"][data-status="complete"]')).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export all (JSON)").click()
    with open(download.value.path(), encoding="utf-8") as exported:
        data = json.load(exported)
    assert [c["title"] for c in data["conversations"]] == ["Compress me"]
    assert not page.problems, page.problems
