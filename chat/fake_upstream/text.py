"""The fake's reply text: deterministic markdown per prompt, choice and salt."""

from __future__ import annotations

import hashlib
import json
import random
import re


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Word lists are written as prose so they stay short and easy to edit.
_WORDS = _words(
    "adapter array balance batch beacon binary buffer cache canvas channel checkpoint "
    "cluster compact context cursor dataset decoder delta digest document driver element "
    "encoder engine entropy event feature filter fragment framework gateway gradient graph "
    "handler harbor header heuristic index input kernel lattice layer ledger lens library "
    "lighthouse limit marker matrix memory meridian method metric mirror model module "
    "network node offset orbit outline output packet parameter parser pattern pipeline "
    "pivot prompt protocol quartz query queue record reducer register renderer request "
    "resource response river router sample scaffold schema scope segment sequence session "
    "signal snapshot socket source span stream structure summary syntax table target "
    "template tensor thread token topology trace trellis update value vector version "
    "window worker"
)
_VERBS = _words(
    "adjusts balances builds caches changes checks collects combines compares computes "
    "connects describes divides drives encodes expands filters follows handles improves "
    "keeps links maps measures merges moves normalizes orders parses reads reduces "
    "refines renders resolves returns samples scales selects shapes sorts splits stores "
    "tracks transforms updates validates wraps writes"
)
_ADJECTIVES = _words(
    "careful clear compact consistent direct early efficient explicit fast final flexible "
    "gentle gradual hidden honest large late lazy local modest narrow natural plain "
    "practical precise quiet rapid robust shallow short simple small stable steady strict "
    "subtle useful"
)
_GLUE = ("the", "a", "each", "every", "this", "that", "one", "the whole", "a single")
_LINKS = ("and", "while", "because", "so", "when", "before", "after", "unless", "since")
_OPENERS = (
    'You asked about "{q}". Here is how I would approach it.',
    'Good question: "{q}". The short answer is that it depends on a few details.',
    'Let\'s look at "{q}" step by step.',
    'About "{q}": there are a couple of things worth separating.',
    'Regarding "{q}", here is a practical way to think about it.',
)
_LIST_INTROS = ("Key points:", "In practice:", "A few things to check:", "To summarise:")
_CLOSERS = (
    "Let me know if you want a deeper dive into any of these.",
    "Happy to expand on any part of this.",
    "That should be enough to get started.",
    "Try it on a small example first and adjust from there.",
)
_EMPTY_PROMPT_REPLY = "Hello! I am a demo model. Ask me anything and I will make something up."

# One streamed piece: a newline, a word or a punctuation run with its leading spaces, or a
# trailing run of spaces.  Lossless: "".join(tokenize(s)) == s.
_TOKEN_RE = re.compile(r"\n|[^\S\n]*\w+|[^\S\n]*[^\w\s]+|[^\S\n]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(repr, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _quote(prompt: str, max_words: int = 7) -> str:
    words = prompt.split()
    quoted = " ".join(words[:max_words]).replace('"', "'")
    return quoted + ("…" if len(words) > max_words else "")


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_GLUE), rng.choice(_ADJECTIVES), rng.choice(_WORDS), rng.choice(_VERBS)]
    words += [rng.choice(_GLUE), rng.choice(_WORDS)]
    if rng.random() < 0.6:
        words += [rng.choice(_LINKS), rng.choice(_GLUE), rng.choice(_WORDS), rng.choice(_VERBS)]
        words.append(rng.choice(_ADJECTIVES))
    if rng.random() < 0.25:
        i = rng.choice((2, 5))  # a noun; bold articles look odd
        words[i] = f"**{words[i]}**"
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _bullets(rng: random.Random) -> str:
    items = []
    for _ in range(rng.randint(2, 4)):
        items.append(
            f"- **{rng.choice(_WORDS).capitalize()}**: {rng.choice(_GLUE)} "
            f"{rng.choice(_WORDS)} {rng.choice(_VERBS)} {rng.choice(_ADJECTIVES)} "
            f"{_plural(rng.choice(_WORDS))}"
        )
    return rng.choice(_LIST_INTROS) + "\n\n" + "\n".join(items)


def _code(rng: random.Random) -> str:
    name = f"{rng.choice(_VERBS).removesuffix('s')}_{rng.choice(_WORDS)}"
    item = rng.choice(_WORDS)
    items = _plural(item)
    k = rng.randint(2, 9)
    body = rng.choice(
        (
            f"    return [{item} * {k} for {item} in {items}]",
            f"    total = 0\n    for {item} in {items}:\n        total += {item}\n"
            f"    return total / {k}",
            f"    if not {items}:\n        return None\n    return sorted({items})[:{k}]",
        )
    )
    return f"```python\ndef {name}({items}):\n{body}\n```"


def _numbered(rng: random.Random) -> str:
    steps = []
    for k in range(rng.randint(3, 5)):
        steps.append(
            f"{k + 1}. **{rng.choice(_VERBS).removesuffix('s').capitalize()}** {rng.choice(_GLUE)} "
            f"{rng.choice(_ADJECTIVES)} {rng.choice(_WORDS)}."
        )
    return "Steps:\n\n" + "\n".join(steps)


def _table(rng: random.Random) -> str:
    names = rng.sample(_WORDS, rng.randint(3, 4))
    rows = [
        f"| `{name}` | {rng.randint(2, 480)} ms | {rng.randint(1, 99)} % | "
        f"{rng.choice(_ADJECTIVES)} {rng.choice(_WORDS)} |"
        for name in names
    ]
    head = "| Option | Latency | Share | Notes |\n|---|--:|--:|---|"
    return "A comparison:\n\n" + head + "\n" + "\n".join(rows)


def _json_block(rng: random.Random) -> str:
    item = {
        "name": f"{rng.choice(_ADJECTIVES)}-{rng.choice(_WORDS)}",
        "version": rng.randint(1, 9),
        "enabled": rng.random() < 0.5,
        "tags": rng.sample(_WORDS, 2),
        "limits": {"requests": rng.randint(10, 600), "tokens": rng.randint(1000, 90000)},
    }
    return "```json\n" + json.dumps(item, indent=2) + "\n```"


# The code a question names, by its fence's language; the default is Python.
_CODE_LANGUAGES = {
    "python": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "sql": "sql",
    "query": "sql",
    "bash": "bash",
    "shell": "bash",
    "rust": "rust",
    "go": "go",
    "golang": "go",
}


def _code_in(language: str, rng: random.Random) -> str:
    item = rng.choice(_WORDS)
    items = _plural(item)
    k = rng.randint(2, 9)
    verb = rng.choice(_VERBS).removesuffix("s")
    if language == "python":
        return _code(rng)
    bodies = {
        "javascript": f"function {verb}{item.capitalize()}s({items}) {{\n"
        f"  return {items}.filter(Boolean).slice(0, {k});\n}}",
        "typescript": f"function {verb}{item.capitalize()}s({items}: string[]): string[] {{\n"
        f"  return {items}.filter(Boolean).slice(0, {k});\n}}",
        "sql": f"SELECT {item}, COUNT(*) AS n\nFROM {items}\nGROUP BY {item}\n"
        f"ORDER BY n DESC\nLIMIT {k};",
        "bash": f'for f in ./{items}/*; do\n  echo "{verb}: $f"\ndone | head -n {k}',
        "rust": f"fn {verb}_{item}({items}: &[u32]) -> u32 {{\n"
        f"    {items}.iter().take({k}).sum()\n}}",
        "go": f"func {verb}{item.capitalize()}({items} []int) int {{\n\ttotal := 0\n"
        f"\tfor _, v := range {items} {{\n\t\ttotal += v\n\t}}\n\treturn total / {k}\n}}",
    }
    return f"```{language}\n{bodies[language]}\n```"


_ASKS = (
    ("table", re.compile(r"\b(tables?|tabular|columns)\b")),
    ("json", re.compile(r"\bjson\b")),
    (
        "code",
        re.compile(
            r"\b(code|function|script|snippet|program|implement\w*|python|javascript|js|node"
            r"|typescript|sql|bash|shell|rust|golang|regex)\b"
        ),
    ),
    ("steps", re.compile(r"\b(steps?|step-by-step|how do i|how to|instructions)\b")),
    ("list", re.compile(r"\b(list|bullets?|bullet points|checklist|ideas|options|pros)\b")),
)


def asked_shapes(prompt: str) -> list[str]:
    """What a question asks the answer to hold, in this order: ``table``, ``json``,
    ``code``, ``steps`` (a numbered list), ``list`` (bullets): the demo answers a question
    asking for a table with a table, without any ``@fake`` scripting."""
    lowered = prompt.lower()
    shapes = [name for name, pattern in _ASKS if pattern.search(lowered)]
    if "steps" in shapes and "list" in shapes:
        shapes.remove("list")
    return shapes


def _code_language(prompt: str) -> str:
    for word in re.findall(r"[a-z]+", prompt.lower()):
        if word in _CODE_LANGUAGES:
            return _CODE_LANGUAGES[word]
    return "python"


def _asked_blocks(prompt: str, rng: random.Random) -> list[str]:
    blocks = []
    for shape in asked_shapes(prompt):
        if shape == "table":
            blocks.append(_table(rng))
        elif shape == "json":
            blocks.append(_json_block(rng))
        elif shape == "code":
            blocks.append(_code_in(_code_language(prompt), rng))
        elif shape == "steps":
            blocks.append(_numbered(rng))
        else:
            blocks.append(_bullets(rng))
    return blocks


class _Layout:
    """An opener, the extras (bullets, code, or what the question asks for: a table, JSON,
    code, steps, a list) and a closer around a growing list of sentences."""

    def __init__(self, prompt: str, rng: random.Random) -> None:
        self.rng = rng
        opener = rng.choice(_OPENERS).format(q=_quote(prompt)) if prompt.strip() else None
        self.opener = opener or _EMPTY_PROMPT_REPLY
        self.extras: list[str] = _asked_blocks(prompt, rng)
        if not self.extras:
            if rng.random() < 0.5:
                self.extras.append(_bullets(rng))
            if rng.random() < 0.35:
                self.extras.append(_code(rng))
        self.closer = rng.choice(_CLOSERS)
        self.sentences: list[str] = []

    def assemble(self, first: list[str], second: list[str]) -> str:
        blocks = [" ".join([self.opener, *first]), *self.extras]
        if second:
            blocks.append(" ".join([*second, self.closer]))
        elif self.extras:
            blocks.append(self.closer)
        else:
            blocks[0] += " " + self.closer
        return "\n\n".join(blocks)

    def sentence(self, k: int) -> str:
        """The ``k``-th sentence (from 0), made up on first use."""
        while len(self.sentences) <= k:
            self.sentences.append(_sentence(self.rng))
        return self.sentences[k]

    def with_sentences(self, k: int) -> str:
        if k:
            self.sentence(k - 1)
        half = (k + 1) // 2
        return self.assemble(self.sentences[:half], self.sentences[half:k])


def _fewest_sentences(layout: _Layout, target: int) -> str:
    """The text with the fewest sentences that reaches ``target`` tokens.

    Counted rather than tokenizing the growing text again for each sentence, which was
    quadratic (~1 s for 8,000 tokens: time this single-threaded server spent with every
    other stream stalled). From two sentences on the layout is fixed and a joining space
    merges into the next word, so each sentence adds exactly its own tokens; the result is
    checked all the same.
    """
    k, text = 0, layout.assemble([], [])
    count = len(tokenize(text))
    while count < target and k < 2:
        k += 1
        text = layout.with_sentences(k)
        count = len(tokenize(text))
    while count < target:
        k += 1
        count += len(tokenize(layout.sentence(k - 1)))
    text = layout.with_sentences(k)
    while len(tokenize(text)) < target:
        k += 1
        text = layout.with_sentences(k)
    while k > 0 and len(tokenize(layout.with_sentences(k - 1))) >= target:
        k -= 1
        text = layout.with_sentences(k)
    return text


def generate_reply(prompt: str, *, choice: int = 0, salt: object = None, tokens: int = 0) -> str:
    """A markdown answer derived from ``prompt``; ``tokens`` > 0 makes it exactly that long."""
    rng = _rng(prompt, choice, salt)
    target = tokens or rng.randint(60, 120)
    text = _fewest_sentences(_Layout(prompt, rng), target)
    if tokens:
        text = "".join(tokenize(text)[:tokens])
    return text
