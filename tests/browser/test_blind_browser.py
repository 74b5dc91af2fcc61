"""In Chromium: Blind shuffles each turn's answers (seeded, stored), letters them by the
order shown, numbers the lanes instead, keeps the order on reload, and a vote for a
letter goes to the lane behind it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Conversation
from tests.browser.conftest import ARTIFACTS
from tests.browser.screenshots import send_and_wait
from tests.browser.test_chat_flow import create_first_account
from tests.browser.test_compare_browser import add_lane

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shown_order(page, turn: int) -> list[int]:
    cells = page.locator(f"#turn-{turn} .lane-cell")
    return [int(c.get_attribute("id").rsplit("-", 1)[1]) for c in cells.all()]


def test_blind_turns_show_their_stored_shuffled_order_and_votes_follow_the_letter(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    create_first_account(page, app_server)
    send_and_wait(page, 'Warm up\n@fake {"tokens": 3}', 1)
    add_lane(page, 2)
    add_lane(page, 3)
    page.get_by_role("button", name="Blind").click()
    page.get_by_role("button", name="Blind: on").wait_for()
    # The lanes are numbered while Blind is on: letters name a turn's answers.
    expect(page.locator(".lane-badge")).to_have_text(["1", "2", "3"])
    for turn in (2, 3, 4):
        send_and_wait(page, f'Question {turn}\n@fake {{"tokens": 5}}', turn)

    conversation = Conversation.objects.get()
    orders = {turn: conversation.blind_orders[str(turn)] for turn in (2, 3, 4)}
    for turn, order in orders.items():
        assert shown_order(page, turn) == order
        expect(page.locator(f"#turn-{turn} .msg-assistant .who")).to_have_text(
            ["Answer A", "Answer B", "Answer C"]
        )
    page.screenshot(path=str(ARTIFACTS / "blind-shuffled.png"))
    page.reload()
    for turn, order in orders.items():
        assert shown_order(page, turn) == order

    # "B is better" on turn 3: the lane shown second wins, whatever its position.
    summary = page.locator("#summary-3")
    summary.get_by_role("button", name="B is better").click()
    summary.get_by_text("Voted: B better").wait_for()
    vote = conversation.votes.get(turn=3)
    lanes = {lane.pk: lane.position for lane in conversation.lanes.all()}
    assert vote.winner_position == lanes[orders[3][1]]
    assert not page.problems, page.problems
