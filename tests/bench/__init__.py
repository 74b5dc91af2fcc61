"""Tools to measure the relay and the history search, and the entry points that run them:
``python -m tests.bench.relay`` (``make bench``), ``python -m tests.bench.sidebyside``
(``make sidebyside``) and ``python -m tests.bench.search`` (``make searchbench``). The app
does not import them.

``wire`` speaks the page's side of the websocket (auth cookie, frames; the scale-out and
limit tests use it too), ``procstat`` reads a process's CPU and memory from /proc,
``harness`` starts the fake endpoint and the app as real processes on a throwaway
database, ``streams`` reads one answer (over the socket or straight from the endpoint),
``measure_relay`` runs the relay's measurements and ``report`` holds the results, the
targets and the table; ``peers`` installs and starts nginx and a LiteLLM proxy, which
``measure_sidebyside`` measures next to the app and ``sidebyside_report`` tabulates;
``measure_search`` seeds a big history and times the search.
"""

from __future__ import annotations

import os


def setup_django() -> None:
    """Django for a benchmark run from the command line, with the project's settings
    (as ``manage.py`` had it); nothing to do when it is already set up (under pytest)."""
    from django.apps import apps

    if apps.ready:
        return
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
