"""``python -m chat.serve [daphne options] playground.asgi:application``: daphne, with the
websocket message limit the app's own limits need.

daphne drops any websocket message over 1 MiB by default, silently for the page: a 1.5 MB
image (the app takes 5 MB) was never sent. Every way this project serves the app (make
run, the tests' live server, the benchmark, the README's deployment) goes through here;
an option given on the command line wins.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings


def daphne_argv(argv: list[str]) -> list[str]:
    """`argv` with the websocket size options added unless it sets them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    added = []
    for option, value in (
        ("--websocket-max-message-size", settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE),
        ("--websocket-max-frame-size", settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE),
    ):
        if not any(arg == option or arg.startswith(option + "=") for arg in argv):
            added += [option, str(value)]
    return added + argv


def main(argv: list[str] | None = None) -> None:
    args = daphne_argv(list(sys.argv[1:] if argv is None else argv))
    # Late on purpose, not for a cycle: daphne.cli imports daphne.server, which installs
    # Twisted's asyncio reactor on import; the tests import this module in their process.
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
