from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest
from django.utils.safestring import SafeString

from chat import render
from chat.render import render_logprobs, render_markdown, render_plain
from chat.turns import title_from

# What the sanitiser may let through; anything else in the output is a regression.
ALLOWED_ATTRS: dict[str, set[str]] = {
    "p": set(),
    "br": set(),
    "hr": set(),
    **{f"h{n}": set() for n in range(1, 7)},
    "strong": set(),
    "em": set(),
    "del": set(),
    "s": set(),
    "code": {"class"},
    "pre": {"class"},
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "rel", "target"},
    "table": set(),
    "thead": set(),
    "tbody": set(),
    "tr": set(),
    "th": set(),
    "td": set(),
    "span": {"class", "title"},
    "div": {"class"},
    "button": {"type", "class", "data-copy"},
}
SAFE_SCHEMES = ("http:", "https:", "mailto:")
RAW_TAG_RE = re.compile(r"<\s*/?\s*(script|iframe|object|embed|svg|img|style)\b", re.IGNORECASE)


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def unsafe_parts(out: str) -> list[str]:
    """Every executable-looking vector in rendered output (empty list means safe)."""
    problems = [f"raw tag {m.group(0)!r}" for m in RAW_TAG_RE.finditer(out)]
    parser = _TagCollector()
    parser.feed(out)
    parser.close()
    for tag, attrs in parser.tags:
        if tag not in ALLOWED_ATTRS:
            problems.append(f"tag <{tag}>")
            continue
        for name, value in attrs:
            if re.fullmatch(r"on\w+", name):
                problems.append(f"event handler {name} on <{tag}>")
            elif name not in ALLOWED_ATTRS[tag]:
                problems.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src"):
                # Browsers ignore whitespace and control characters inside the scheme.
                scheme = re.sub(r"[\x00-\x20]", "", value or "").lower()
                if re.match(r"(javascript|vbscript|data):", scheme) or not scheme.startswith(
                    SAFE_SCHEMES
                ):
                    problems.append(f"{name}={value!r} on <{tag}>")
    return problems


def test_safety_check_flags_real_vectors() -> None:
    # Guards against the XSS test passing only because the checker sees nothing.
    assert unsafe_parts('<img src="x" onerror="alert(1)">')
    assert unsafe_parts('<a href=" JaVa\tScript:alert(1)">x</a>')
    assert unsafe_parts('<a href="data:text/html,x">x</a>')
    assert unsafe_parts('<p onclick="x">x</p>')
    assert unsafe_parts("<svg></svg>")
    assert not unsafe_parts('<p>&lt;script&gt; onerror=alert(1)</p><a href="https://e.x">e</a>')


def test_empty_input_renders_empty_string() -> None:
    assert render_markdown("") == ""


def test_output_is_marked_safe_for_templates() -> None:
    assert isinstance(render_markdown("hi"), SafeString)
    assert isinstance(render_plain("hi"), SafeString)


def test_headings_lists_and_emphasis() -> None:
    out = render_markdown("# Title\n\n## Sub\n\n- *one*\n- **two**\n\n3. three\n4. four\n")
    assert "<h1>Title</h1>" in out
    assert "<h2>Sub</h2>" in out
    assert "<li><em>one</em></li>" in out
    assert "<li><strong>two</strong></li>" in out
    assert '<ol start="3">' in out


def test_tables_render_without_alignment_styles() -> None:
    out = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n")
    assert "<table>" in out
    assert "<th>a</th>" in out
    assert "<td>2</td>" in out
    assert "style" not in out


def test_strikethrough() -> None:
    assert "<s>gone</s>" in render_markdown("~~gone~~")


def test_blockquote_inline_code_and_rule() -> None:
    out = render_markdown("> quoted `x < y`\n\n---\n")
    assert "<blockquote>" in out
    assert "<code>x &lt; y</code>" in out
    assert "<hr>" in out


def test_code_fence_is_highlighted_with_pygments_classes_and_copy_button() -> None:
    out = render_markdown("```python\ndef f(x):\n    return '<b>'\n```\n")
    assert out.startswith('<div class="code-block"><div class="code-head">')
    assert '<span class="code-lang">python</span>' in out
    assert '<button type="button" class="copy" data-copy="">Copy</button>' in out
    assert '<pre><code class="hl language-python">' in out
    assert '<span class="k">def</span>' in out
    assert '<span class="nf">f</span>' in out
    assert "&lt;b&gt;" in out
    assert "style=" not in out


def test_unknown_language_is_plain_escaped_text() -> None:
    out = render_markdown("```nosuchlang\n<b>bold</b> & more\n```\n")
    assert '<span class="code-lang">nosuchlang</span>' in out
    assert '<code class="hl language-nosuchlang">&lt;b&gt;bold&lt;/b&gt; &amp; more\n' in out
    assert '<span class="' not in out.split("<code", 1)[1]


def test_fence_without_language_still_gets_copy_button() -> None:
    out = render_markdown("```\nplain\n```\n")
    assert '<span class="code-lang">text</span>' in out
    assert "data-copy" in out
    assert '<code class="hl">plain\n</code>' in out


def test_fence_language_cannot_inject_markup() -> None:
    out = render_markdown('```"><script>alert(1)</script>\ncode\n```\n')
    assert unsafe_parts(out) == []
    assert '<code class="hl language-scriptalert1script">' in out


def test_lexer_failure_falls_back_to_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("lexer bug")

    monkeypatch.setattr(render, "highlight", broken)
    out = render_markdown("```python\nx = '<a>'\n```\n")
    assert "x = '&lt;a&gt;'" in out


def test_code_beyond_highlight_budget_stays_plain_but_later_small_blocks_are_highlighted() -> None:
    huge = "x = '<a>'\n" * (render._HIGHLIGHT_BUDGET // 10 + 1)
    out = render_markdown(f"```python\n{huge}```\n\n```python\ny = 2\n```\n")
    huge_block, small_block = out.split('<div class="code-block">')[1:]
    assert "data-copy" in huge_block
    assert "x = '&lt;a&gt;'\n" in huge_block
    assert '<span class="n">' not in huge_block
    assert '<span class="n">y</span>' in small_block


def test_highlight_budget_is_per_answer() -> None:
    block = "```python\n" + "x = 1\n" * (render._HIGHLIGHT_BUDGET // 6 - 10) + "```\n"
    first = render_markdown(block)
    assert '<span class="n">x</span>' in first
    assert render_markdown(block) == first


def test_raw_html_is_shown_as_text() -> None:
    out = render_markdown("Hello <script>alert(1)</script> <b>bold</b>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out
    assert "<script" not in out


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<IMG SRC="javascript:alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "~~<svg/onload=alert(1)>~~",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  JAVASCRIPT:alert(1)  )",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#58;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    '![x" onerror="alert(1)](https://evil.example/p.png)',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    "<a href=https://ok.example onmouseover=alert(1)>x</a>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    "<embed src=https://evil.example/x.swf>",
    "<style>body{display:none}</style>",
    "<details open ontoggle=alert(1)>",
    '<base href="javascript:alert(1)//">',
    "<form action=javascript:alert(1)><button>x</button></form>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<!--<img src=x onerror=alert(1)>-->",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "[x][ref]\n\n[ref]: <data:text/html,<script>alert(1)</script>>",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "[[x](javascript:alert(1))](https://ok.example)",
    "[![x](https://evil.example/p.png)](javascript:alert(1))",
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    '[a](<https://ok.example/" onclick="alert(1)>)',
    '<https://ok.example/"onmouseover="alert(1)>',
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "```python onload=alert(1)\nx\n```",
    "    <script>alert(1)</script>",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_produces_no_executable_vector(payload: str) -> None:
    out = render_markdown(payload)
    assert unsafe_parts(out) == [], out


def test_remote_image_is_not_loaded_but_alt_and_url_are_shown() -> None:
    out = render_markdown("![secret *chart*](https://evil.example/p.png?d=1&e=2)")
    assert "<img" not in out
    assert "src=" not in out
    assert '<span class="img-blocked" title="Remote image not loaded">' in out
    assert "🖼 secret chart (https://evil.example/p.png?d=1&amp;e=2)" in out


def test_reference_style_image_is_not_loaded() -> None:
    out = render_markdown("![pic][p]\n\n[p]: https://evil.example/p.png\n")
    assert "<img" not in out
    assert "🖼 pic (https://evil.example/p.png)" in out


def test_links_open_in_new_tab_with_noopener() -> None:
    out = render_markdown("[site](https://example.com/a?b=1) and <https://auto.example>")
    assert (
        '<a href="https://example.com/a?b=1" target="_blank" '
        'rel="noopener noreferrer nofollow">site</a>'
    ) in out
    assert (
        '<a href="https://auto.example" target="_blank" '
        'rel="noopener noreferrer nofollow">https://auto.example</a>'
    ) in out


def test_mailto_links_are_kept() -> None:
    assert 'href="mailto:a@example.com"' in render_markdown("[mail](mailto:a@example.com)")


@pytest.mark.parametrize("url", ["ftp://example.com/f", "/admin/", "//evil.example/x", "#top"])
def test_links_outside_http_https_mailto_lose_their_href(url: str) -> None:
    out = render_markdown(f"[x]({url})")
    assert "href" not in out
    assert ">x</a>" in out


def test_bare_urls_are_not_linkified() -> None:
    assert "<a" not in render_markdown("see https://example.com")


def test_render_plain_escapes_html() -> None:
    assert render_plain('<b>"x" & y</b>') == "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"


# --------------------------------------------------------------------------- logprobs


class _Spans(HTMLParser):
    """The spans of render_logprobs output: (attributes, text), the text unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.spans: list[tuple[dict[str, str | None], str]] = []
        self.other_tags: list[str] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "span" or self._open:
            self.other_tags.append(tag)
            return
        self.spans.append((dict(attrs), ""))
        self._open = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._open = False

    def handle_data(self, data: str) -> None:
        if not self._open:
            self.other_tags.append(f"text {data!r}")
            return
        attrs, text = self.spans[-1]
        self.spans[-1] = (attrs, text + data)


def spans_of(out: str) -> list[tuple[dict[str, str | None], str]]:
    parser = _Spans()
    parser.feed(out)
    parser.close()
    assert parser.other_tags == []
    return parser.spans


def tok(token: str, p: float | None, *top: tuple[str, float]) -> dict:
    logprob = None if p is None else (math.log(p) if p > 0 else -9999.0)
    return {
        "token": token,
        "logprob": logprob,
        "top": [{"token": t, "logprob": math.log(q)} for t, q in top],
    }


@pytest.mark.parametrize(
    ("p", "bucket"),
    [
        (1.0, 9),
        (0.95, 9),
        (0.9, 9),
        (0.899, 8),
        (0.5, 5),
        (0.31, 3),
        (0.1, 1),
        (0.0999, 0),
        (0.001, 0),
        (0.0, 0),  # -9999, OpenAI's minus infinity
        (None, 9),  # unknown (null): not shaded
    ],
)
def test_logprob_buckets(p: float | None, bucket: int) -> None:
    [(attrs, text)] = spans_of(render_logprobs([tok("word", p)]))
    assert attrs["class"] == f"lp lp-{bucket}"
    assert text == "word"


def test_logprobs_title_lists_the_token_then_its_alternatives() -> None:
    out = render_logprobs(
        [tok(" the", 0.921, (" the", 0.921), (" a", 0.053), (" an", 0.01), ("\n", 0.00002))]
    )
    assert isinstance(out, SafeString)
    [(attrs, text)] = spans_of(out)
    assert text == " the"  # the text itself is untouched
    assert attrs["title"] == '"␣the" 92.1%\n"␣a" 5.3%\n"␣an" 1.0%\n"⏎" <0.1%'
    assert "&#10;" in out  # the title's line breaks are entities, not raw newlines


def test_logprobs_keep_newlines_in_the_text_and_show_them_in_the_title() -> None:
    out = render_logprobs([tok("end.", 0.7), tok("\n\n", 0.4, ("\t", 0.2)), tok("Next", 0.6)])
    spans = spans_of(out)
    assert [text for _, text in spans] == ["end.", "\n\n", "Next"]
    assert "".join(text for _, text in spans) == "end.\n\nNext"
    assert spans[1][0]["title"] == '"⏎⏎" 40.0%\n"⇥" 20.0%'
    assert [attrs["class"] for attrs, _ in spans] == ["lp lp-7", "lp lp-4", "lp lp-6"]


def test_logprobs_escape_hostile_tokens_and_titles() -> None:
    hostile = '<script>alert("x")</script>'
    quote_breaker = '" onmouseover="alert(1)" x=\''
    out = render_logprobs(
        [
            tok(hostile, 0.5, (quote_breaker, 0.3), ("<img src=x onerror=alert(1)>", 0.1)),
            tok(quote_breaker, 0.2, ("&amp;", 0.1)),
            tok("\x00\u202e", 0.9),
        ]
    )
    assert "<script" not in out and "<img" not in out
    assert "style" not in out  # the CSP forbids style attributes: classes only
    assert unsafe_parts(out) == []
    spans = spans_of(out)
    assert [set(attrs) for attrs, _ in spans] == [{"class", "title"}] * 3
    assert [text for _, text in spans] == [hostile, quote_breaker, "\x00\u202e"]
    assert spans[0][0]["title"] == (
        f'"{hostile}" 50.0%\n"{quote_breaker.replace(" ", "␣")}" 30.0%\n'
        '"<img␣src=x␣onerror=alert(1)>" 10.0%'
    )
    assert spans[1][0]["title"] == f'"{quote_breaker.replace(" ", "␣")}" 20.0%\n"&amp;" 10.0%'
    # Invisible characters are shown as escapes in the title.
    assert spans[2][0]["title"] == '"\\u0000\\u202e" 90.0%'


def test_logprobs_tolerate_odd_items() -> None:
    out = render_logprobs(
        [{"token": None, "logprob": "x", "top": "nope"}, {"token": "a", "top": [None, {"x": 1}]}]
    )
    assert [(attrs["class"], text) for attrs, text in spans_of(out)] == [
        ("lp lp-9", ""),
        ("lp lp-9", "a"),
    ]
    assert render_logprobs([]) == ""


def test_plain_text_keeps_the_words_and_drops_markdown_and_scripting_lines():
    from chat.render import plain_text

    text = (
        '# Title\n\n**Bold** and _it_ `code` [link](https://x.test/y)\n@fake {"tokens": 4}\n'
        "- one\n- two\n\n```py\nx = 1\n```\n<b>raw</b>"
    )
    assert plain_text(text) == "Title Bold and it code link one two x = 1 <b>raw</b>"
    assert plain_text('@fake {"reply": "hi"}') == ""
    assert plain_text("") == ""


def test_a_title_is_the_first_question_as_words():
    assert title_from('**Why** is `WAL` faster?\n@fake {"tokens": 5}') == "Why is WAL faster?"
    long = title_from("word " * 30)
    assert len(long) == 81 and long.endswith("…") and long.startswith("word word")
