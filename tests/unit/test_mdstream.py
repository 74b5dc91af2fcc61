"""Markdown while streaming (chat.mdstream): complete blocks rendered once, the rest text."""

from __future__ import annotations

import random

import pytest

from chat import mdstream
from chat.fake_upstream import generate_reply
from chat.mdstream import MarkdownStream, resolve_refs, utf16_len
from chat.render import render_markdown
from tests.security.xss_payloads import PAYLOADS
from tests.unit.test_render import unsafe_parts


def replay(text: str, step: int | list[int]) -> tuple[MarkdownStream, list[mdstream.Commit]]:
    """Feed ``text`` in pieces (of ``step`` characters, or of these sizes in turn),
    checking each commit against what the page would rebuild from its frame."""
    md = MarkdownStream()
    commits: list[mdstream.Commit] = []
    sizes = [step] if isinstance(step, int) else step
    pos = n = 0
    while pos < len(text):
        size = sizes[n % len(sizes)]
        n += 1
        pending = md.feed(text[pos : pos + size])
        pos += size
        if pending is None:
            continue
        commit = pending.render()
        assert commit.start == (commits[-1].end if commits else 0)
        assert commit.keep == utf16_len(text[commit.end : pos])
        if not commit.plain:
            shown = commit.html + (md.html[-1] if commit.opened else "")
            if commit.filled:  # the page has the fence's frame: only its code travels
                fence = mdstream._FENCE_HTML.match(shown)
                shown = fence.group(1) + shown[fence.end() :]
            # The page's rebuild from references is the render itself.
            source = text[commit.start : commit.end]
            assert (resolve_refs(commit.wire, source) if commit.refs else commit.wire) == shown
        commits.append(commit)
    assert md.committed == (commits[-1].end if commits else 0)
    return md, commits


def streamed_then_final(md: MarkdownStream) -> str:
    """The blocks shown while streaming, then the tail rendered: must be the final render."""
    if md._head:  # an open fence: its empty frame gives way to its render
        return "".join(md.html[:-1]) + render_markdown(md._head + md.tail)
    return "".join(md.html) + render_markdown(md.tail)


# A link to a definition further down renders only in the final render (by design).
REFS = "[ref]: https://example.com\n\nA [link][ref] and [later][].\n\n[later]: https://x.example\n"
DOCS = [
    "Intro with **bold** and `code`.\n\n```python\ndef f(x):\n    return x\n```\n\n"
    "After the code, more.\n\n- a\n- b\n\n  still b\n- c\n\nEnd.",
    "\r\n\r\nHello *there*\r\n\r\n```\r\ncode\r\n\r\nmore\r\n```\r\nafter\r\n",
    "para\n```js\nlet a\n```\n```py\nx = 1\n```\ntail 😀 **é**\n\n# H\nnext\n===\n\nx",
    "```\nunclosed 😀\n\nstill code\n",
    "1. one\n2. two\n\n3. three\n\n10) other list\n\n> quote\nlazy\n\n> second quote\n\n---\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n\nafter the table\n\n    indented\n\n    code\n\nend",
    "#hashtag is not a heading\n#\n\n***\n~~~~\n~~~\nstill code\n~~~~\ndone",
    "Setext\n---\n\nno trailing newline at all",
    "emoji 👩‍👩‍👧 and astral 𝔘𝔫𝔦 text in a paragraph long enough to be a reference.\n\nnext",
]


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("step", [1, 2, 5, 17, [3, 1, 40], 100_000])
def test_blocks_then_tail_render_exactly_as_the_final_render(doc, step):
    md, _ = replay(doc, step)
    assert streamed_then_final(md) == render_markdown(doc)


def test_the_fake_endpoints_answers_stream_as_blocks_that_match_the_final_render():
    rng = random.Random(7)
    committed = 0
    for i in range(150):
        text = generate_reply(f"question {i}", tokens=rng.choice([60, 200, 500]))
        md, commits = replay(text, [rng.randint(1, 30) for _ in range(5)])
        assert streamed_then_final(md) == render_markdown(text)
        committed += bool(commits)
    assert committed == 150  # every answer has blocks before its last


def test_a_paragraph_is_rendered_once_a_blank_line_ends_it():
    md = MarkdownStream()
    assert md.feed("Some **bold") is None
    assert md.feed(" words**.\n") is None  # a paragraph may go on
    commit = md.feed("\nNext").render()
    assert commit.html == "<p>Some <strong>bold words</strong>.</p>\n"
    assert (commit.start, commit.end, md.tail) == (0, 22, "Next")
    assert commit.keep == 4


def test_a_block_split_across_deltas_waits_for_its_line_to_end():
    md = MarkdownStream()
    # "#" alone is an (empty) heading, "#tag" is text: nothing is decided mid-line.
    assert md.feed("Intro\n\n#").render().html == "<p>Intro</p>\n"
    assert md.feed("tag") is None
    commit = md.feed(" more\n\n").render()
    assert commit.html == "<p>#tag more</p>\n"


def test_headings_and_closed_fences_commit_without_waiting_for_the_next_block():
    md = MarkdownStream()
    assert md.feed("## Title\n").render().html == "<h2>Title</h2>\n"
    opened = md.feed("```python\nx = 1\n").render()
    assert opened.opened and 'class="code-block"' in md.html[-1] and md.tail == "x = 1\n"
    closed = md.feed("```\n").render()
    assert closed.end == len("## Title\n```python\nx = 1\n```\n")
    assert '<span class="n">x</span>' in closed.html  # highlighted once closed
    assert md.tail == "" and not md._head


def test_an_open_fence_is_shown_as_an_empty_code_block_without_highlighting():
    md = MarkdownStream()
    commit = md.feed("Look:\n\n```rust\nfn main() {\n").render()
    assert commit.opened and commit.html == "<p>Look:</p>\n"
    frame = md.html[-1]
    assert '<span class="code-lang">rust</span>' in frame and "<code" in frame
    assert "<span class=" not in frame.split("<code", 1)[1]  # no highlighting yet
    assert md.tail == "fn main() {\n" and commit.keep == len("fn main() {\n")
    assert md.snapshot("Look:\n\n```rust\nfn main() {\n")["open"] is True


def test_a_list_waits_for_a_block_that_is_not_part_of_it():
    md = MarkdownStream()
    for piece in ("Tips:\n\n", "- one\n", "- two\n\n", "  more of two\n\n", "- three\n\n"):
        commit = md.feed(piece)
        if commit is not None:
            assert commit.render().html == "<p>Tips:</p>\n"
    commit = md.feed("Done.\n").render()
    assert commit.html.startswith("<ul>\n<li>\n<p>one</p>") and commit.html.count("<li>") == 3


def test_leading_blank_lines_never_reach_the_tail():
    md = MarkdownStream()
    commit = md.feed("\r\n\r\n").render()
    assert (commit.html, commit.keep, md.tail) == ("", 0, "")
    assert md.feed("Hi") is None and md.tail == "Hi"


def test_offsets_count_utf16_units_as_the_browser_does():
    text = "😀 **é** 𝔘 text of some length here\n\nnext 😀"
    md, (commit,) = replay(text, len(text))
    assert commit.keep == utf16_len("next 😀") == 7
    assert commit.refs and "\ue000" in commit.wire
    assert resolve_refs(commit.wire, text[: commit.end]) == commit.html


def test_frames_reuse_the_text_the_page_already_has():
    words = generate_reply("bytes", tokens=400).replace("```", "").replace("\n- ", "\n\n")
    text = "\n\n".join(f"## Part {i}\n\n**{i}.** {words}" for i in range(5))
    md, commits = replay(text, 20)
    wire = sum(len(c.wire.encode()) for c in commits)
    html = sum(len(c.html.encode()) for c in commits)
    assert wire < 0.5 * html  # the markup travels, the words do not travel again


def test_parsing_stays_linear_in_a_long_list_and_a_long_code_fence():
    lines = "".join(f"- item number {i} of a long list\n" for i in range(4000))
    code = "```python\n" + "".join(f"x_{i} = {i}  # a line of code\n" for i in range(4000))
    for text in (lines + "\nEnd.\n", code + "```\n\nEnd.\n"):
        md, commits = replay(text, 40)
        assert md.parsed_chars < 12 * len(text), (md.parsed_chars, len(text))
        assert commits[-1].plain  # too long to lay out at once: text until the end


def test_a_block_too_long_to_lay_out_at_once_stays_text():
    big = "word " * 4000  # 20 KB paragraph
    md, (commit,) = replay(big + "\n\nafter", 500)
    assert commit.plain and commit.wire == "" and commit.html.startswith('<div class="plain">')


def test_reference_definitions_that_come_first_are_honoured_while_streaming():
    md, commits = replay(REFS, 4)
    shown = "".join(c.html for c in commits)
    assert '<a href="https://example.com"' in shown  # defined before use
    assert "[later][]" in shown  # defined after: text until the final render
    assert '<a href="https://x.example"' in render_markdown(REFS)


def test_untrusted_markup_is_sanitised_in_every_block():
    text = "\n\n".join(PAYLOADS) + "\n\nend"
    md, commits = replay(text, 13)
    for commit in commits:
        assert unsafe_parts(commit.html) == [], commit.html
        assert unsafe_parts(commit.wire) == [], commit.wire
    assert streamed_then_final(md) == render_markdown(text)


def test_text_that_looks_like_a_reference_is_not_one():
    text = "fake \ue0005.3\ue001 reference in a paragraph\n\nnext"
    md, (commit,) = replay(text, 6)
    assert not commit.refs and commit.wire == commit.html


def test_a_fence_opening_after_a_block_too_long_is_still_shown_as_code():
    text = "word " * 4000 + "\n\n```python\nx = 1\n```\n\nafter"
    md, commits = replay(text, [7, 1, 1, 1, 1, 1])
    assert commits[0].plain and commits[0].end == len("word " * 4000 + "\n\n")
    # The fence after it is a block of its own, rendered and highlighted.
    assert '<span class="n">x</span>' in commits[-1].html and not commits[-1].plain
