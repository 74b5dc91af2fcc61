"""The sidebar's history under date headings (item 17): Pinned, Today, Yesterday,
Previous 7 days, Previous 30 days, then by month; a page loaded by "Older
conversations…" continues its heading instead of repeating it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chat import history
from chat.models import Conversation
from tests.integration.history_world import chat_with

pytestmark = pytest.mark.django_db


def listed(html: str) -> list[str]:
    """Headings and titles in page order: '# Today', 'Alpha', ..."""
    found = re.findall(
        r'<h2 class="conv-group">([^<]*)</h2>|class="conv-link" title="([^"]*)"', html
    )
    return [f"# {heading}" if heading else title for heading, title in found]


def aged(owner, title: str, days: int, *, pinned: bool = False) -> Conversation:
    conversation = chat_with(owner, title, "hi")
    when = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when, pinned=pinned)
    return conversation


def month(days: int) -> str:
    return (timezone.localtime() - timedelta(days=days)).strftime("%B %Y")


def test_the_history_is_grouped_by_date(owner_client, owner):
    for title, days in [
        ("Now", 0), ("Last night", 1), ("Three days", 3), ("Six days", 6), ("Two weeks", 14),
        ("Three weeks", 21), ("Forty days", 40), ("A year", 366),
    ]:  # fmt: skip
        aged(owner, title, days)
    aged(owner, "Pinned old", 500, pinned=True)
    page = owner_client.get(reverse("chat:index")).content.decode()
    assert listed(page) == [
        "# Pinned", "Pinned old",
        "# Today", "Now",
        "# Yesterday", "Last night",
        "# Previous 7 days", "Three days", "Six days",
        "# Previous 30 days", "Two weeks", "Three weeks",
        f"# {month(40)}", "Forty days",
        f"# {month(366)}", "A year",
    ]  # fmt: skip


def test_an_older_page_continues_its_heading(owner_client, owner, monkeypatch):
    monkeypatch.setattr(history, "SIDEBAR_PAGE", 2)
    for title, days in [("A", 0), ("B", 2), ("C", 3), ("D", 4), ("E", 60)]:
        aged(owner, title, days)
    first = owner_client.get(reverse("chat:index")).content.decode()
    assert listed(first) == ["# Today", "A", "# Previous 7 days", "B"]
    url = reverse("chat:history_list")
    second = owner_client.get(url, {"offset": 2}, headers={"HX-Request": "true"})
    assert listed(second.content.decode()) == ["C", "D"]
    third = owner_client.get(url, {"offset": 4}, headers={"HX-Request": "true"})
    assert listed(third.content.decode()) == [f"# {month(60)}", "E"]


def test_days_are_the_servers(owner, settings):
    """'Today' starts at the server's midnight (settings.TIME_ZONE), not UTC's."""
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+12/13
    timezone.activate("Pacific/Auckland")
    try:
        today = timezone.localdate()
        midnight = timezone.make_aware(timezone.datetime(today.year, today.month, today.day, 0, 30))
        assert history.date_group(midnight, today) == "Today"
        assert history.date_group(midnight - timedelta(hours=1), today) == "Yesterday"
    finally:
        timezone.deactivate()
