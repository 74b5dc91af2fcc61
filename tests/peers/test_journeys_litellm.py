"""A new user on a LiteLLM proxy, in Chromium: add it, fetch its models, chat, stop,
compare two of its models, and check its compatibility report against what it does."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers, create_first_account

from . import journey
from .conftest import MOCK_TEXT
from .truth import find_truths

pytestmark = [
    pytest.mark.browser,
    pytest.mark.peers,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),  # the first test also starts the servers
]
NAME = "LiteLLM proxy"


def setup_endpoint(page, app_server, litellm) -> None:
    create_first_account(page, app_server)
    journey.add_endpoint(page, app_server, name=NAME, url=litellm.base_url, api_key=litellm.api_key)
    journey.fetch_models(page, litellm.models)


def test_chat_stop_and_compare_on_litellm(app_server, page, litellm):
    setup_endpoint(page, app_server, litellm)
    journey.open_new_conversation(page, app_server, NAME)
    # The Model field follows the endpoint picked: its default model, no typing needed.
    journey.model_follows(page, "mock-chat", litellm.models)

    # Three streamed turns, each with the usage LiteLLM counted.
    for number, prompt in enumerate(["Hello there", "And again?", "One more"], start=1):
        assert journey.send(page, prompt, number).strip() == MOCK_TEXT
        journey.usage_of(page, number)
        assert "stop" in answers(page).nth(number - 1).locator(".metrics").inner_text()
    assert page.locator('[data-role="user"]').count() == 3

    # Stop, on the model LiteLLM relays to a slow upstream.
    journey.set_model(page, "relay-demo")
    page.get_by_label("Message").fill('A long one\n@fake {"tokens": 400, "tps": 15}')
    page.get_by_role("button", name="Send", exact=True).click()
    fourth = answers(page).nth(3)
    fourth.and_(page.locator('[data-status="streaming"]')).wait_for()
    page.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 5", arg=fourth.element_handle()
    )
    page.get_by_role("button", name="Stop").click()
    fourth.and_(page.locator('[data-status="stopped"]')).wait_for()
    kept = fourth.locator(".msg-body").inner_text()
    assert len(kept.split()) < 300  # stopped well before the 400 tokens asked for

    # Two lanes: the mock and the relayed model, side by side on one prompt.
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    journey.set_model(page, "mock-chat", 0, "Model A")
    journey.set_model(page, "relay-demo", 1, "Model B")
    page.get_by_label("Message").fill("Compare, please")
    page.get_by_role("button", name="Send", exact=True).click()
    cells = page.locator("#turn-5 .lane-cell")
    for index in (0, 1):
        cells.nth(index).locator('[data-status="complete"]').wait_for()
    assert cells.nth(0).locator(".msg-body").inner_text().strip() == MOCK_TEXT
    assert "Compare, please" in cells.nth(1).locator(".msg-body").inner_text()  # the fake
    assert "tokens" in cells.nth(1).locator(".metrics").inner_text()

    # All of it is still there after a reload.
    page.reload()
    assert page.locator('[data-role="user"]').count() == 5
    assert answers(page).nth(3).get_attribute("data-status") == "stopped"
    assert not page.problems, page.problems


def test_new_conversation_model_follows_the_litellm_endpoint(app_server, page, litellm):
    setup_endpoint(page, app_server, litellm)
    journey.open_new_conversation(page, app_server, NAME)
    # Fetching the models made the first one the profile's default model.
    journey.model_follows(page, "mock-chat", litellm.models)


@pytest.mark.parametrize("model", ["mock-chat", "relay-demo"])
def test_the_compatibility_report_on_litellm_says_what_it_does(app_server, page, litellm, model):
    setup_endpoint(page, app_server, litellm)
    rows = journey.run_compat(page, app_server, NAME, model)
    assert all(status != "pending" for status, _ in rows.values())
    truths = find_truths(litellm, model)
    journey.assert_verdicts_agree(rows, truths, f"litellm-{model}")
    assert not page.problems, page.problems


def test_chat_and_responses_side_by_side_on_litellm(app_server, page, litellm):
    """One model (relayed to the fake) on LiteLLM's /chat/completions and /responses:
    three streamed turns with usage on each, the Responses lane's history as input
    items through LiteLLM's bridge, and Stop on it."""
    setup_endpoint(page, app_server, litellm)
    journey.open_new_conversation(page, app_server, NAME)
    journey.model_follows(page, "mock-chat", litellm.models)  # the endpoint's, arrived
    page.get_by_label("Model").fill("relay-demo")  # the new conversation's first lane
    assert journey.send(page, "Hello", 1)
    page.get_by_role("button", name="+ Lane").click()
    page.locator(".lane-head").nth(1).wait_for()
    journey.set_model(page, "relay-demo", 1, "Model B")
    journey.set_api(page, "responses", 1, "API B")
    for turn, prompt in enumerate(["Lighthouses", "And lightships?", "One more"], start=2):
        page.get_by_label("Message").fill(prompt)
        page.get_by_role("button", name="Send", exact=True).click()
        cells = page.locator(f"#turn-{turn} .lane-cell")
        for index in (0, 1):
            cells.nth(index).locator('[data-status="complete"]').wait_for()
            # The fake quotes the question: both APIs carried it.
            assert prompt in cells.nth(index).locator(".msg-body").inner_text()
            assert "tokens" in cells.nth(index).locator(".metrics").inner_text()
        assert "Responses" in cells.nth(1).locator(".metrics").inner_text()
    cells.nth(1).get_by_role("button", name="Inspect this answer").click()
    sent = json.loads(page.locator("#inspector-request").inner_text())
    assert [i.get("role") for i in sent["input"]][-3:] == ["user", "assistant", "user"]
    raw = page.locator("#inspector-response").inner_text()
    assert "response.output_text.delta" in raw and "response.completed" in raw
    page.keyboard.press("Escape")

    # Stop on the Responses lane, mid-stream through LiteLLM's bridge.
    page.get_by_label("Message").fill('A long one\n@fake {"tokens": 400, "tps": 15}')
    page.get_by_role("button", name="Send", exact=True).click()
    cell = page.locator("#turn-5 .lane-cell").nth(1)
    page.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 5",
        arg=cell.locator(".msg-body").element_handle(),
    )
    cell.get_by_role("button", name="Stop this answer").click()
    cell.locator('[data-status="stopped"]').wait_for()
    assert len(cell.locator(".msg-body").inner_text().split()) < 300
    page.screenshot(path=str(ARTIFACTS / "peers-litellm-responses.png"))
    assert not page.problems, page.problems
