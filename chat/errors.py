"""The one error for a refused action: raised by turns, branching, compare, history and
the other actions, caught by views and the consumer, whose message is shown to the user
as it is."""

from __future__ import annotations


class ActionError(Exception):
    """A user-facing refusal (bad input, a busy conversation, a lane too many...): nothing
    was changed, and the message says why."""
