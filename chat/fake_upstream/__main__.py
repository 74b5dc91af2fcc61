"""``python -m chat.fake_upstream --port 8001``: see ``chat.fake_upstream.cli``."""

from __future__ import annotations

from chat.fake_upstream.cli import main

if __name__ == "__main__":
    main()
