"""What a user does that starts answers: send, edit, regenerate, answer tool calls, and
the next try of a repeat. Each action checks (ActionError, before anything is saved),
changes the database, and returns one ``Started``: the question (if any), a streaming
placeholder per answer with the exact body it is asked with, and what every page on the
conversation shows. ``chat.runs.start`` is the one way to run one:

    runs.start(partial(actions.regenerate, conversation, positions=[0], turn=3))

Synchronous (the database thread). ``early``: see ``turns.EarlyStart``; only a send
can hand its bodies over before its save (the others build theirs after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat import branching, composer, frames, turns
from chat.errors import ActionError
from chat.images import images_clean
from chat.models import Conversation, Message
from chat.turns import EarlyStart


@dataclass(frozen=True)
class Started:
    conversation: Conversation
    placeholders: list[Message]  # saved, with lane, profile and request body at hand
    html: str  # announced to every page before any of the answers' frames
    question: Message | None = None

    @property
    def group(self) -> str:
        return self.conversation.group_name


def _strings(value: Any) -> list[str]:
    """A form value as htmx sends it: absent, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    raise ActionError("Malformed image field.")


def send(
    conversation: Conversation,
    text: str,
    frame: dict[str, Any] | None = None,
    *,
    early: EarlyStart | None = None,
) -> Started:
    """A new turn. ``frame``: the composer's send (images, and the panel's values and
    the tools editor that travel with it, checked and saved as their autosaves would
    save them; a refusal saves nothing) or None (a question alone)."""
    images: list[dict[str, Any]] = []
    if frame is not None:
        images = images_clean(
            data_urls=_strings(frame.get("image_data")), urls=_strings(frame.get("image_url"))
        )
        composer.send_apply(conversation, frame)
    question, placeholders = turns.turn_save(
        conversation=conversation, content=text, images=images, early=early
    )
    # The placeholders carry the lanes turn_save just read (profile, conversation).
    lanes = [p.lane for p in placeholders]
    html = frames.turn(conversation, question, placeholders, lanes)
    return Started(conversation, placeholders, html, question)


def edit(
    conversation: Conversation, *, message_id: Any, text: str, early: EarlyStart | None = None
) -> Started:
    """A new version of a question, answered in every lane; the old one stays."""
    question, placeholders, last_turn = branching.message_edit(
        conversation=conversation, message_id=message_id, content=text
    )
    # Every page drops the turns of the version it showed, then gets the new one.
    html = frames.turns_deleted(question.turn, last_turn) + frames.turn(
        conversation, question, placeholders
    )
    return Started(conversation, placeholders, html, question)


def regenerate(
    conversation: Conversation,
    *,
    positions: list[int] | None,
    turn: int | None,
    early: EarlyStart | None = None,
) -> Started:
    """Another answer to a turn (default: the latest) in some lanes (None: all)."""
    placeholders = turns.answers_regenerate(
        conversation=conversation, positions=positions, turn=turn
    )
    html = "".join(frames.cell(p.lane, p.turn) for p in placeholders)
    return Started(conversation, placeholders, html)


def tool_results(
    conversation: Conversation,
    *,
    answer_id: int,
    results: dict[str, str],
    early: EarlyStart | None = None,
) -> Started:
    """The user's results for an answer's tool calls, and the model's next answer."""
    answer, tool_messages, placeholder = turns.tool_results_submit(
        conversation=conversation, assistant_id=answer_id, results=results
    )
    html = frames.tool_turn(answer, tool_messages, placeholder)
    return Started(conversation, [placeholder], html)


def repeat(*, answer_id: int, early: EarlyStart | None = None) -> Started:
    """The next try of a repeat series, after answer ``answer_id`` (same lane and turn)."""
    done = Message.objects.select_related("lane__conversation").get(pk=answer_id)
    placeholder = turns.attempt_next(lane=done.lane, turn=done.turn, branch=done.branch)
    html = frames.cell(done.lane, done.turn)
    return Started(done.lane.conversation, [placeholder], html)
