from __future__ import annotations

import pytest

from tests.faults.rawserver import raw_server  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users are made per test; a real password hash costs ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# The browser fixtures live with the browser tests; the XSS test uses them from here.
from tests.browser.conftest import browser, page  # noqa: E402, F401
