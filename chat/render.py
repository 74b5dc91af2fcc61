"""Turn untrusted model output (markdown) into HTML that is safe to put on the page.

Two independent layers: markdown-it never emits raw HTML from the text (``html=False``) and
refuses dangerous link schemes, then nh3 re-sanitises the result against a small allowlist.
Either layer alone should be enough; both together mean a bug in one is not an XSS.
"""

from __future__ import annotations

import html
import math
import re
from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class_by_name, find_lexer_class_for_filename
from pygments.util import ClassNotFound

__all__ = [
    "markdown_env",
    "parse_markdown",
    "render_logprobs",
    "render_markdown",
    "render_plain",
    "render_tokens",
]

# The language name ends up in a class attribute and a label; keep it to characters real
# language names use (c++, c#, objective-c, shell-session) so it cannot smuggle anything.
_LANG_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_+#.-]")
_LANG_MAX_LEN = 32

# Pygments lexes only ~300 characters per millisecond (100 KB of code takes ~0.4 s), so each
# answer gets this many characters of highlighting; blocks that no longer fit stay plain.
_HIGHLIGHT_BUDGET = 12_000
_BUDGET_KEY = "highlight_budget"

_formatter = HtmlFormatter(nowrap=True)


@lru_cache(maxsize=256)
def _lexer_class(lang: str) -> type[Lexer] | None:
    # Pygments' lookups scan its whole registry, so cache by name; bounded because the
    # names come from untrusted text.
    try:
        return find_lexer_class_by_name(lang)
    except ClassNotFound:
        pass
    # Models sometimes label fences with a file name ("main.rs") instead of a language.
    try:
        return find_lexer_class_for_filename(lang)
    except Exception:
        return None


def _highlight(code: str, lang: str, env: dict[str, Any]) -> str:
    lexer_cls = _lexer_class(lang) if lang else None
    budget = env.get(_BUDGET_KEY, 0)
    if lexer_cls is None or len(code) > budget:
        return escapeHtml(code)
    env[_BUDGET_KEY] = budget - len(code)
    try:
        # stripnl=False: leading blank lines are part of what the user will copy.
        return highlight(code, lexer_cls(stripnl=False), _formatter)
    except Exception:
        # A lexer bug must not take the whole answer down; plain text is a fine fallback.
        return escapeHtml(code)


def _render_fence(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip() if token.info else ""
    lang = _LANG_UNSAFE_RE.sub("", info.split(maxsplit=1)[0])[:_LANG_MAX_LEN] if info else ""
    code_class = f"hl language-{lang}" if lang else "hl"
    return (
        '<div class="code-block"><div class="code-head">'
        f'<span class="code-lang">{escapeHtml(lang or "text")}</span>'
        '<button type="button" class="copy" data-copy>Copy</button></div>'
        f'<pre><code class="{escapeHtml(code_class)}">{_highlight(token.content, lang, env)}'
        "</code></pre></div>\n"
    )


def _render_image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    # Loading a model-chosen URL leaks data (e.g. secrets in the query string) to whoever
    # owns that host, so images are shown as text and never fetched.
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = str(token.attrGet("src") or "")
    return (
        '<span class="img-blocked" title="Remote image not loaded">'
        f"🖼 {escapeHtml(alt)} ({escapeHtml(src)})</span>"
    )


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable(
    ["table", "strikethrough"]
)
_md.add_render_rule("fence", _render_fence)
_md.add_render_rule("image", _render_image)
# The same parser without its inline rules: block boundaries only (chat.mdstream).
_md_blocks = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable(
    ["table", "strikethrough"]
)
_md_blocks.core.ruler.disable(["inline", "text_join"])

_cleaner = nh3.Cleaner(
    tags={
        *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
        *("strong", "em", "del", "s", "a", "span", "div", "button"),
        *("ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"),
    },
    attributes={
        # An explicit empty "*" replaces nh3's default generic attributes (lang, title).
        "*": set(),
        "a": {"href"},
        # Without start, "3. foo" would be renumbered from 1.
        "ol": {"start"},
        "button": {"type", "class", "data-copy"},
        "code": {"class"},
        "pre": {"class"},
        "div": {"class"},
        # title is only ever the fixed "Remote image not loaded" note; text cannot make spans.
        "span": {"class", "title"},
    },
    url_schemes={"http", "https", "mailto"},
    # Relative links would resolve against this app's own origin, which a model never means.
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)


def markdown_env(*, highlight: bool = True) -> dict[str, Any]:
    """The state one answer's render carries from block to block: its highlighting
    budget and the link reference definitions seen so far."""
    return {_BUDGET_KEY: _HIGHLIGHT_BUDGET if highlight else -1}


def render_markdown(text: str) -> str:
    """Render model output as sanitised HTML, ready to insert into a template."""
    if not text:
        return mark_safe("")
    return mark_safe(_cleaner.clean(_md.render(text, markdown_env())))


def parse_markdown(text: str, env: dict[str, Any], *, blocks_only: bool = False) -> list[Any]:
    """markdown-it's tokens for ``text``, for ``render_tokens``; ``blocks_only``: the
    block tokens alone, without parsing their inline content (about half the work)."""
    return (_md_blocks if blocks_only else _md).parse(text, env)


def render_tokens(tokens: list[Any], env: dict[str, Any]) -> str:
    """Sanitised HTML of some of ``parse_markdown``'s tokens: the same pipeline, with
    the same options, as ``render_markdown``."""
    if not tokens:
        return ""
    return _cleaner.clean(_md.renderer.render(tokens, _md.options, env))


# A line scripting the demo endpoint (chat.fake_upstream reads it): not what anyone said.
SCRIPT_LINE_RE = re.compile(r"^[ \t]*@fake[ \t]+\{.*\}[ \t]*$", re.MULTILINE)


def plain_text(text: str) -> str:
    """What a message says, for a title or a search snippet: markdown syntax (emphasis,
    headings, list markers, link targets, fences) and demo scripting lines removed, on one
    line. Parsed, not rendered: cheap, and nothing here is HTML."""
    words: list[str] = []
    for token in _md.parse(SCRIPT_LINE_RE.sub("", text or "")):
        if token.type == "inline":
            for child in token.children or []:
                if child.type in ("text", "code_inline"):
                    words.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    words.append(" ")
            words.append(" ")
        elif token.type in ("fence", "code_block"):
            words.append(token.content)
    return " ".join("".join(words).split())


def render_plain(text: str) -> str:
    """Escape text for display as-is (e.g. raw model output or reasoning)."""
    return mark_safe(html.escape(text or ""))


# --------------------------------------------------------------------------- logprobs

# How whitespace tokens are shown in a token's title (the text itself stays as it is).
_VISIBLE = str.maketrans({" ": "␣", "\n": "⏎", "\r": "␍", "\t": "⇥"})
_LOGPROB_FLOOR = -9999.0


def _probability(logprob: Any) -> float:
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        return 1.0  # unknown: not shaded
    if math.isnan(logprob):
        return 1.0
    return math.exp(min(max(float(logprob), _LOGPROB_FLOOR), 0.0))


def _percent(p: float) -> str:
    if p >= 0.0005:
        return f"{p * 100:.1f}%"
    return "<0.1%" if p > 0 else "0%"


def _shown(token: str) -> str:
    """A token as a title line shows it: quoted, whitespace made visible, controls escaped."""
    visible = token.translate(_VISIBLE)
    visible = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in visible)
    return f'"{visible}"'


def render_logprobs(tokens: list[dict[str, Any]]) -> SafeString:
    """Each token as ``<span class="lp lp-N" title="...">token</span>``, N = 0..9.

    N is the probability bucket (lp-9: p >= 0.9 ... lp-0: p < 0.1), styled by
    ``static/logprobs.css``; the title gives the token's probability then the other top
    alternatives, one a line.  Tokens are shown as they are (newlines included), so the
    caller puts the result in a ``white-space: pre-wrap`` container.  ``tokens`` is the
    shape of ``chat.upstream.Logprobs.tokens``.
    """
    parts = []
    for item in tokens:
        token = item.get("token")
        token = token if isinstance(token, str) else ""
        p = _probability(item.get("logprob"))
        bucket = min(9, int(p * 10 + 1e-9))  # exp(log(0.9)) may land a hair below 0.9
        lines = [f"{_shown(token)} {_percent(p)}"]
        top = item.get("top")
        for alt in top if isinstance(top, list) else []:
            if not isinstance(alt, dict) or not isinstance(alt.get("token"), str):
                continue
            if alt["token"] == token:
                continue  # already the first line
            lines.append(f"{_shown(alt['token'])} {_percent(_probability(alt.get('logprob')))}")
        title = html.escape("\n".join(lines), quote=True).replace("\n", "&#10;")
        parts.append(
            f'<span class="lp lp-{bucket}" title="{title}">{html.escape(token, quote=False)}</span>'
        )
    return mark_safe("".join(parts))
