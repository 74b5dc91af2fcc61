from __future__ import annotations

import re
from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import SafeString

from chat import compare
from chat.models import Lane
from chat.render import SCRIPT_LINE_RE, render_logprobs
from chat.tools import call_check

register = template.Library()


@register.simple_tag
def image_max_bytes() -> int:
    """For the composer's script: refuse an image before reading it (IMAGE_MAX_BYTES)."""
    return settings.IMAGE_MAX_BYTES


@register.simple_tag
def ws_frame_max_bytes() -> int:
    """For the composer's script: the longest frame the socket takes (WS_FRAME_MAX_BYTES)."""
    return settings.WS_FRAME_MAX_BYTES


@register.filter
def stream_fields(message: Any) -> list[dict[str, Any]]:
    """The text columns a streaming answer shows: one per requested choice."""
    body = message.request_body or {}
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    return [{"index": i, "field": "t" if i == 0 else f"t{i}"} for i in range(max(1, min(n, 8)))]


LEADING_BLANK_LINES = re.compile(r"\A\s*\n")


@register.filter
def lead_trimmed(text: Any) -> str:
    """The text without its leading blank lines, as its markdown render will show it."""
    return LEADING_BLANK_LINES.sub("", str(text or ""))


@register.filter
def question_view(text: Any) -> dict[str, Any]:
    """A question as the page shows it: its ``@fake`` lines (the demo endpoint's
    scripting: sent, exported and editable as written) are not what anyone asked, so
    they are taken out of the text and named apart."""
    text = str(text or "")
    scripts = [m.group(0).strip() for m in SCRIPT_LINE_RE.finditer(text)]
    if not scripts:
        return {"text": text, "scripts": ""}
    shown = SCRIPT_LINE_RE.sub("", text)
    return {"text": re.sub(r"\n{3,}", "\n\n", shown).strip("\n"), "scripts": "\n".join(scripts)}


@register.filter
def logprobs_html(tokens: Any) -> SafeString | str:
    if not tokens:
        return ""
    return render_logprobs(tokens)


@register.filter
def image_parts(message: Any) -> list[dict[str, Any]]:
    parts = message.content_parts or []
    images = []
    for part in parts:
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            images.append({"url": url, "inline": url.startswith("data:image/")})
    return images


@register.filter
def money(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value >= 0.0001 else f"${value:.2e}"


@register.filter
def make_list_words(value: str) -> list[str]:
    return value.split()


@register.filter
def tool_views(message: Any) -> list[dict[str, Any]]:
    """The calls of an answer with the verdict stored on their arguments (checked when
    the answer was saved, never here) and the mock result the user saved for each tool."""
    mocks = {
        (entry.get("tool") or {}).get("function", {}).get("name"): entry.get("mock", "")
        for entry in (message.conversation.tools or [])
    }
    verdicts = message.tool_verdicts or []
    views = []
    for number, call in enumerate(message.tool_calls or []):
        view = call_check(call, verdicts[number] if number < len(verdicts) else None)
        view["mock"] = mocks.get(view["name"], "")
        views.append(view)
    return views


def _figure(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.1f}"


@register.filter
def num(value: Any) -> Any:
    """A duration, a token count or a speed as the app writes every figure: a thousands
    separator, whole above 100, one decimal below ("1,546", "59.5"); anything else as is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return _figure(value)


@register.simple_tag
def spread(value: Any, unit: str) -> str:
    """A figure, or min / median / max over repeated runs."""
    if not value:
        return "—"

    fmt = _figure
    suffix = f" {unit}" if unit else ""
    if value["n"] == 1:
        return f"{fmt(value['median'])}{suffix}"
    return (
        f"{fmt(value['min'])} / {fmt(value['median'])} / {fmt(value['max'])}{suffix} "
        f"(min/med/max of {value['n']})"
    )


@register.filter
def lane_label(position: int, blind: Any = False) -> str:
    """A lane's name in its setup: a letter, or a number when blind (where letters name
    a turn's answers, shuffled)."""
    return compare.lane_name(position, blind)


@register.filter
def answer_letter(message: Any) -> str:
    """An answer's letter in its turn (blind: by the turn's shuffled order)."""
    return compare.lane_letter(message.conversation, message.turn, message.lane)


@register.simple_tag(takes_context=True)
def hides_identity(context: template.Context, message: Any) -> bool:
    """Blind mode and no vote on this message's turn yet: show "Lane A", not the model.
    Pages put the voted turns in the context; a partial sent alone (a socket frame)
    has none, so the vote is looked up."""
    if message.role != "assistant":
        return False
    return compare.identity_hidden(message.conversation, message.turn, context.get("voted_turns"))


@register.filter
def redacted(text: Any, message: Any) -> str:
    """An upstream text of a blind, unvoted answer without the lane's names in it."""
    return compare.redact_identity(str(text or ""), message.lane, message.model, message)


ICONS = frozenset(
    (
        "copy",
        "check",
        "inspect",
        "code",
        "regenerate",
        "edit",
        "branch",
        "delete",
        "stop",
        "menu",
        "close",
    )  # fmt: skip
)


@register.simple_tag
def icon(name: str) -> SafeString:
    """An icon of the page's sprite (templates/_icons.html): decorative, so hidden from
    screen readers; the button around it carries the words (aria-label, data-tip)."""
    if name not in ICONS:
        raise template.TemplateSyntaxError(f"unknown icon {name!r}")
    return SafeString(
        f'<svg class="icon" aria-hidden="true" focusable="false"><use href="#i-{name}"/></svg>'
    )


@register.simple_tag
def lane_chips(lane: Any) -> list[dict[str, Any]]:
    """The lane head's parameter chips (chat.compare.lane_chips), against its siblings."""
    siblings = list(Lane.objects.filter(conversation_id=lane.conversation_id).only("pk", "params"))
    return compare.lane_chips(lane, siblings)
