"""Everyday UI, round 3, in Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from chat.models import EndpointProfile, Lane
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
