"""Markdown while an answer streams: each complete top-level block is rendered once.

The text of a streaming answer is split in two: the blocks already complete (rendered by
the same pipeline as the final render, ``chat.render``, so they are sanitised and look
the same) and the open block after them, the *tail*, which the page shows as text. A
block is complete when markdown-it, parsing the tail's complete lines, sees another
top-level block begin after it, or when nothing can extend it any more (a heading, a
rule, a closed code fence, or a paragraph, table or quote followed by a blank line).
Lists and indented code continue across blank lines, so they wait for the next block.

Cost stays linear in the answer: only the tail is parsed, and a long tail is parsed
again only once it has grown by a quarter (an open code fence is instead scanned line
by line for its closing fence). Bytes stay linear too: the page already has the block's
text (it came as tail text), so the frame carries the block's markup with each run of
text replaced by a reference into the tail (``\\ue000<from end>.<length>\\ue001``); the
page copies those characters in as text nodes.

Differences from the final render, by design: a link to a reference definition that
comes later in the answer shows as text until the answer ends (definitions that come
first are honoured), and a block longer than MAX_BLOCK stays text until then (laying out
one such block at once would hold the page's main thread for more than 50 ms).
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

from chat.render import markdown_env, parse_markdown, render_tokens

MAX_BLOCK = 16_000
# A tail up to this long is parsed again on each new line; a longer one only once it
# grew by GROWTH since its last parse, so all parses of one block add up to ~5x its size.
SMALL_TAIL = 2_000
GROWTH = 1.25
# Rendering a chunk this long, or one with code to highlight, is done off the event loop.
CHEAP_RENDER = 4_000

REF_OPEN, REF_CLOSE = "\ue000", "\ue001"
RUNS_OPEN, RUNS_CLOSE = "\ue002", "\ue003"
_MARKS = (REF_OPEN, REF_CLOSE, RUNS_OPEN, RUNS_CLOSE)
# Highlighted code, and its tokens as pygments writes them (flat spans, or bare text).
_CODE = re.compile(r'<code class="hl[^"]*">(?!</code>)(.*?)</code>', re.S)
# A rendered fence: its frame (as the open fence's empty block has it) around its code.
_FENCE_HTML = re.compile(
    r'<div class="code-block">.*?<pre>(<code[^>]*>.*?</code>)</pre></div>\n', re.S
)
_TOKEN = re.compile(r'<span class="([a-z0-9]+)">([^<]*)</span>|([^<]+)')
_TAG = re.compile(r"(<[^>]*>)")
# markdown-it's own line breaks (it normalises \r\n and \r to \n before parsing).
_LINE_END = re.compile(r"\r\n?|\n")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*\r?$", re.MULTILINE)
# A blank line, then a line that is neither indented nor a list item: likely the end of
# a long list or indented code, worth a parse before the tail grew by GROWTH.
_BOUNDARY = re.compile(r"\n[ \t]*\r?\n(?=[^\s*+\d-])")
# How far past the previous run of text the next one is looked for in the block's source.
_SEARCH_WINDOW = 512
# Blocks that end at a blank line; headings, rules and closed fences end with their line.
_ENDS_AT_BLANK = {"paragraph_open", "table_open", "blockquote_open"}
_ENDS_AT_LINE = {"heading_open", "hr"}


def utf16_len(text: str) -> int:
    """Length as the browser counts it (JavaScript strings are UTF-16)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


@dataclass
class Commit:
    """Blocks that just became complete: ``text[start:end]`` of the answer."""

    start: int
    end: int
    html: str  # sanitised HTML of the blocks (escaped text in a div when ``plain``)
    wire: str  # what a frame carries: ``html``, its text runs as references when ``refs``
    refs: bool
    plain: bool
    opened: bool  # the HTML ends with an open code fence's empty block: the tail goes in it
    filled: bool  # the wire starts with the code of the fence the page shows open
    keep: int  # UTF-16 units of the answer left in the tail after these blocks

    def event(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "html": self.wire,
            "refs": self.refs,
            "plain": self.plain,
            "open": self.opened,
            "fill": self.filled,
            "keep": self.keep,
        }


@dataclass
class _Pending:
    """A commit found by ``MarkdownStream.feed``, rendered by ``render``."""

    stream: MarkdownStream
    text: str  # what was parsed: the open fence's first line (if shown), then the tail
    cut: int  # where in it these blocks end (after a newly opened fence's first line)
    end: int  # where the blocks to render end (before that line)
    tokens: list[Any]  # their block tokens
    fence: Any  # an open fence to show as an empty code block, the tail in it
    opening: str  # that fence's first line
    cheap: bool
    rendered: tuple[Any, ...] | None = None

    def prepare(self) -> None:
        """Render the blocks (slow for code or long blocks: fine in a thread)."""
        self.rendered = self.stream._render(self)

    def render(self) -> Commit:
        """Render if not prepared, and move the split past these blocks (on the loop)."""
        return self.stream._commit(self)


class MarkdownStream:
    """One streaming field's split into committed blocks and tail."""

    def __init__(self) -> None:
        self.env = markdown_env()  # shared by all blocks: highlight budget, references
        self.committed = 0  # characters of the answer the page shows as blocks
        self.tail = ""
        self.html: list[str] = []
        self.parsed_chars = 0  # characters handed to the parser, for tests and the bench
        # An open code fence is shown as a code block with the tail in it: its first line
        # is then no longer in the tail, but parsed in front of it.
        self._head = ""
        self._lines = 0  # end of the tail's complete lines at the last parse
        self._parsed = 0  # tail length at the last parse that committed nothing
        self._fence: tuple[str, int] | None = None  # the open fence: char, length
        self._scanned = 0  # tail characters searched for that fence's closing line

    def snapshot(self, text: str) -> dict[str, Any]:
        """The blocks so far, for a page that has ``text`` (the field's whole text, which
        may run ahead of what was fed)."""
        keep = utf16_len(text[self.committed :])
        html = "".join(self.html)
        return {"end": self.committed, "html": html, "keep": keep, "open": bool(self._head)}

    def feed(self, chunk: str) -> _Pending | None:
        """Add the next piece of the answer; returns the blocks it completed, if any."""
        self.tail += chunk
        lines = self.tail.rfind("\n") + 1  # complete lines only: "#" may become "#tag"
        if lines <= self._lines:
            return None
        if self._fence is not None:
            if not self._fence_closes(lines):
                self._scanned = self._lines = lines
                return None
        elif (
            lines > SMALL_TAIL
            and lines < GROWTH * self._parsed
            and not _BOUNDARY.search(self.tail, max(0, self._lines - 3), lines)
        ):
            return None
        return self._parse(lines)

    def _fence_closes(self, lines: int) -> bool:
        char, size = self._fence
        start = self._scanned  # always the start of a line
        for match in _FENCE_LINE.finditer(self.tail, start, lines):
            marker = match.group(1)
            # The tail's first line opens the fence, unless that line is the head.
            if (match.start() > 0 or self._head) and marker[0] == char and len(marker) >= size:
                return True
        return False

    def _parse(self, lines: int) -> _Pending | None:
        text = self._head + self.tail[:lines]
        self.parsed_chars += len(text)
        self._lines = self._scanned = lines
        self._fence = None
        tokens = parse_markdown(text, self.env, blocks_only=True)
        starts = [(i, t) for i, t in enumerate(tokens) if t.level == 0 and t.map and t.nesting >= 0]
        if not starts:
            if text.strip():  # e.g. a reference definition, which a title may follow
                self._parsed = lines
                return None
            return self._pending(text, len(text), [])  # blank lines: nothing to show
        offsets = [0] + [m.end() for m in _LINE_END.finditer(text)]
        count = len(offsets) - 1
        index, last = starts[-1]
        after = text[offsets[last.map[1]] :] if last.map[1] < count else ""
        complete = not after.strip() and (
            (last.type in _ENDS_AT_BLANK and after != "")
            or last.type in _ENDS_AT_LINE
            or (last.type == "fence" and self._closed(last, text, offsets))
        )
        if complete:
            return self._pending(text, len(text), tokens)
        fence = None
        if last.type == "fence":
            self._fence = (last.markup[0], len(last.markup))
            if not self._head or last.map[0] > 0:
                fence = last  # not shown as a code block yet
        if len(starts) == 1 and last.map[0] == 0 and fence is None:
            self._parsed = lines
            return None
        if fence is None:
            return self._pending(text, offsets[last.map[0]], tokens[:index])
        first = text[offsets[last.map[0]] : offsets[last.map[0] + 1]]
        return self._pending(text, offsets[last.map[0] + 1], tokens[:index], fence, first)

    @staticmethod
    def _closed(fence: Any, text: str, offsets: list[int]) -> bool:
        first, end = fence.map
        if end - first < 2:
            return False
        line = text[offsets[end - 1] : offsets[end]]
        match = _FENCE_LINE.match(line.rstrip("\r\n"))
        marker = match.group(1) if match else ""
        return marker[:1] == fence.markup[0] and len(marker) >= len(fence.markup)

    def _pending(
        self, text: str, cut: int, tokens: list[Any], fence: Any = None, opening: str = ""
    ) -> _Pending:
        heavy = cut > CHEAP_RENDER or any(t.type == "fence" for t in tokens)
        end = cut - len(opening)
        return _Pending(self, text, cut, end, tokens, fence, opening, cheap=not heavy)

    def _render(self, pending: _Pending) -> tuple[Any, ...]:
        """The expensive half of a commit (parse, highlight, sanitise): it changes nothing
        a snapshot reads, so it may run in a thread while the event loop serves one."""
        head = self._head
        used = pending.cut - len(head)  # characters of the tail
        plain = pending.end - len(head) > MAX_BLOCK
        if plain:
            used = pending.end - len(head)  # a fence opening after it stays in the tail
        source = self.tail[:used]
        fill = bool(head and pending.tokens) and not plain  # the open fence closed
        if plain:
            return (
                used,
                f'<div class="plain">{html_lib.escape(source)}</div>',
                "",
                False,
                False,
                True,
            )
        # Parsed again in full, inline content included: only the blocks, only once.
        tokens = parse_markdown(pending.text[: pending.end], self.env) if pending.tokens else []
        html = render_tokens(tokens, self.env)
        shown = html
        if fill:
            # The page has the block's frame already: only its code element travels.
            match = _FENCE_HTML.match(html)
            fill = match is not None
            if fill:
                shown = match.group(1) + html[match.end() :]
        wire, refs = with_refs(shown, source)
        return used, html, wire, refs, fill, False

    def _commit(self, pending: _Pending) -> Commit:
        if pending.rendered is None:
            pending.rendered = self._render(pending)
        used, html, wire, refs, fill, plain = pending.rendered
        if self._head and pending.tokens:
            self.html.pop()  # the open fence's empty block: its render replaces it
            self._head = ""
        if plain:
            self._fence = None  # parse again: whatever is open is shown as text for now
        if html:
            self.html.append(html)
        fence = None if plain else pending.fence
        if fence is not None:
            # Its first line goes, with what precedes it; no highlighting until it closes.
            frame = render_tokens([fence.copy(content="")], markdown_env(highlight=False))
            self._head = pending.opening
            self.html.append(frame)
            wire += frame
        start = self.committed
        self.committed += used
        self.tail = self.tail[used:]
        self._lines = max(0, self._lines - used)
        self._scanned = max(0, self._scanned - used)
        self._parsed = 0
        keep = utf16_len(self.tail)
        opened = fence is not None
        return Commit(start, self.committed, html, wire, refs, plain, opened, fill, keep)


def with_refs(html: str, source: str) -> tuple[str, bool]:
    """``html`` with each run of text that is also in ``source`` (the block's markdown,
    which the page already shows) replaced by a reference: its distance from the end of
    ``source`` and its length, in UTF-16 units. Highlighted code becomes one reference
    with its tokens' classes and lengths (``\ue002<from end>.<length>:k.3 w.1 .2\ue003``).
    Sanitising is untouched: only text between tags changes, classes are pygments' own
    names, and the page puts the referenced characters in as text."""
    if any(mark in source for mark in _MARKS):
        return html, False  # the text itself would read as references
    refs = _Refs(source)
    out = []
    last = 0
    for code in _CODE.finditer(html):
        out.append(refs.text(html[last : code.start(1)]))
        out.append(refs.code(code.group(1)))
        last = code.end(1)
    out.append(refs.text(html[last:]))
    return "".join(out), refs.used


class _Refs:
    def __init__(self, source: str) -> None:
        self.source = source
        self.total = utf16_len(source)
        self.pos = self.pos16 = 0  # how far into the source the references got
        self.used = False

    def _find(self, text: str) -> tuple[int, int] | None:
        """Where ``text`` is in the source, after the last reference: (from end, size)."""
        found = self.source.find(text, self.pos, self.pos + len(text) + _SEARCH_WINDOW)
        if found < 0:
            return None
        start16 = self.pos16 + utf16_len(self.source[self.pos : found])
        size16 = utf16_len(text)
        self.pos, self.pos16 = found + len(text), start16 + size16
        return self.total - start16, size16

    def text(self, html: str) -> str:
        out = []
        for piece in _TAG.split(html):
            if len(piece) < 6 or piece[0] == "<":
                out.append(piece)
                continue
            found = self._find(html_lib.unescape(piece))
            ref = f"{REF_OPEN}{found[0]}.{found[1]}{REF_CLOSE}" if found else piece
            if len(ref) + 4 < len(piece):  # the two markers take 3 bytes each in UTF-8
                out.append(ref)
                self.used = True
            else:
                out.append(piece)
        return "".join(out)

    def code(self, inner: str) -> str:
        runs = []
        end = 0
        for match in _TOKEN.finditer(inner):
            if match.start() != end:
                return self.text(inner)  # not pygments' flat output: leave it
            end = match.end()
            cls, text = match.group(1), match.group(2)
            if cls is None:
                cls, text = "", match.group(3)
            runs.append((cls, html_lib.unescape(text)))
        if end != len(inner) or len(runs) < 2:
            return self.text(inner)
        found = self._find("".join(text for _, text in runs))
        if found is None:
            return self.text(inner)
        self.used = True
        tokens = " ".join(f"{cls}.{utf16_len(text)}" for cls, text in runs)
        return f"{RUNS_OPEN}{found[0]}.{found[1]}:{tokens}{RUNS_CLOSE}"


def resolve_refs(wire: str, source: str) -> str:
    """What the page does with a frame's references (for tests): the HTML they stand for,
    with the referenced text escaped as a text node would serialise it."""
    units = source.encode("utf-16-le")

    def cut(start: int, size: int) -> str:
        return units[2 * start : 2 * (start + size)].decode("utf-16-le")

    def escape(text: str) -> str:
        return html_lib.escape(text, quote=False).replace("\xa0", "&nbsp;")

    def text(match: re.Match[str]) -> str:
        return escape(cut(len(units) // 2 - int(match.group(1)), int(match.group(2))))

    def code(match: re.Match[str]) -> str:
        start = len(units) // 2 - int(match.group(1))
        out = []
        for token in match.group(3).split(" "):
            cls, size = token.rsplit(".", 1)
            piece = escape(cut(start, int(size)))
            start += int(size)
            out.append(f'<span class="{cls}">{piece}</span>' if cls else piece)
        return "".join(out)

    wire = re.sub(f"{RUNS_OPEN}(\\d+)\\.(\\d+):([^{RUNS_CLOSE}]*){RUNS_CLOSE}", code, wire)
    return re.sub(f"{REF_OPEN}(\\d+)\\.(\\d+){REF_CLOSE}", text, wire)
