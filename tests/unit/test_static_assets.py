"""Generated static files stay what their generator makes."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from tests.conftest import ROOT


def test_pygments_css_is_the_generators_output():
    out = StringIO()
    call_command("pygments_css", stdout=out)
    assert (ROOT / "static" / "pygments.css").read_text() == out.getvalue()


def test_pygments_css_pairs_every_colour_for_both_themes():
    sheet = (ROOT / "static" / "pygments.css").read_text()
    colours = [line for line in sheet.splitlines() if "color:" in line]
    assert len(colours) > 40
    assert all("light-dark(" in line for line in colours)
