"""A fake OpenAI-compatible server for demos and tests.

Pure ASGI and free of Django, so the upstream client can serve it in-process (base URL
``http://fake.invalid/v1``) and ``python -m chat.fake_upstream --port 8001`` can put it on a
real port.  Replies are deterministic: the same prompt gives the same answer, which lets
tests compare a streamed reply with a non-streamed one.

A request can script the server with an ``@fake {json}`` line in the last user message or an
``x-fake: {json}`` header (header keys win); see ``Directives`` for the keys.

``FakeConfig`` switches make it behave like other servers ("personalities"); each entry of
``PERSONALITIES`` is served under its own prefix, so ``http://fake.invalid/no-tools/v1``
(or ``http://127.0.0.1:8001/no-tools/v1``) is a server without tool support.  Without a
prefix the app uses its own config.  The fake honours ``response_format`` (json_object:
a JSON object; json_schema: an instance of the schema), ``seed`` (same seed, same text;
another seed, another text), ``stop``, ``n``, logprobs and image parts; a script can add
reasoning text (``reasoning_content`` or ``reasoning`` deltas) before the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("demo", "demo-fast", "demo-slow")
# The module-level app may serve a long-running demo; keep the request log bounded.
MAX_LOGGED_REQUESTS = 500
MAX_CHOICES = 16

_JSON = "application/json"


@dataclass
class FakeConfig:
    """Server-wide defaults and the switches that make it behave like other servers."""

    tokens_per_second: float = 60
    ttft_ms: int = 150
    supports_stream_options: bool = True
    max_tokens_field: str = "both"  # "max_tokens" | "max_completion_tokens" | "both"
    supports_tools: bool = True
    error_shape: str = "openai"  # "openai" | "plain"
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    supports_images: bool = True
    # Roles accepted for instructions: OpenAI's o1-mini took only "developer"; some chat
    # templates (older vLLM / llama.cpp) know only "system".
    system_roles: tuple[str, ...] = ("system", "developer")
    # Parameters refused with a 400 "Unsupported parameter", as reasoning models do.
    unsupported_params: tuple[str, ...] = ()
    # How unscripted tool calls are streamed (see ``Directives.tool_style``).
    tool_style: str = "standard"
    # The model that answers a request without ``model`` (None: such a request is refused,
    # as OpenAI does; a llama.cpp server or a gateway with a default route answers it).
    default_model: str | None = None


# The servers the fake can imitate, each under ``/<name>/v1``.
PERSONALITIES: dict[str, FakeConfig] = {
    "full": FakeConfig(),
    "no-stream-options": FakeConfig(supports_stream_options=False),
    "max-completion-tokens": FakeConfig(max_tokens_field="max_completion_tokens"),
    "no-tools": FakeConfig(supports_tools=False),
    "plain-errors": FakeConfig(error_shape="plain"),
    "no-images": FakeConfig(supports_images=False),
    # An o1-style reasoning model: no max_tokens, no system role, no logprobs.
    "reasoning": FakeConfig(
        max_tokens_field="max_completion_tokens",
        system_roles=("developer",),
        unsupported_params=("logprobs", "top_logprobs"),
    ),
    # Chat templates that know only "system"; parallel tool calls streamed without index
    # (Gemini's OpenAI layer) or with index 0 for every call (Ollama).
    "system-only": FakeConfig(system_roles=("system",)),
    "tool-index-missing": FakeConfig(tool_style="no_index"),
    "tool-index-reused": FakeConfig(tool_style="reuse_index"),
    "default-model": FakeConfig(default_model="demo-fast"),
}
_PERSONALITY_PATH = re.compile(r"^/([a-z0-9-]+)(/v1(?:/.*)?)$")


# --------------------------------------------------------------------------- reply text


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


def generate_reply(prompt: str, *, choice: int = 0, salt: object = None, tokens: int = 0) -> str:
    """A markdown answer derived from ``prompt``; ``tokens`` > 0 makes it exactly that long."""
    rng = _rng(prompt, choice, salt)
    target = tokens or rng.randint(60, 120)
    opener = rng.choice(_OPENERS).format(q=_quote(prompt)) if prompt.strip() else None
    opener = opener or _EMPTY_PROMPT_REPLY
    extras = []
    if rng.random() < 0.5:
        extras.append(_bullets(rng))
    if rng.random() < 0.35:
        extras.append(_code(rng))
    closer = rng.choice(_CLOSERS)

    def assemble(first: list[str], second: list[str]) -> str:
        blocks = [" ".join([opener, *first]), *extras]
        if second:
            blocks.append(" ".join([*second, closer]))
        elif extras:
            blocks.append(closer)
        else:
            blocks[0] += " " + closer
        return "\n\n".join(blocks)

    sentences: list[str] = []

    def with_sentences(k: int) -> str:
        while len(sentences) < k:
            sentences.append(_sentence(rng))
        half = (k + 1) // 2
        return assemble(sentences[:half], sentences[half:k])

    # The fewest sentences that reach the target. Counted rather than tokenizing the
    # growing text again for each sentence, which was quadratic (~1 s for 8,000 tokens:
    # time this single-threaded server spent with every other stream stalled). From two
    # sentences on the layout is fixed and a joining space merges into the next word, so
    # each sentence adds exactly its own tokens; the result is checked all the same.
    k, text = 0, assemble([], [])
    count = len(tokenize(text))
    while count < target and k < 2:
        k += 1
        text = with_sentences(k)
        count = len(tokenize(text))
    while count < target:
        k += 1
        if len(sentences) < k:
            sentences.append(_sentence(rng))
        count += len(tokenize(sentences[k - 1]))
    text = with_sentences(k)
    while len(tokenize(text)) < target:
        k += 1
        text = with_sentences(k)
    while k > 0 and len(tokenize(with_sentences(k - 1))) >= target:
        k -= 1
        text = with_sentences(k)
    if tokens:
        text = "".join(tokenize(text)[:tokens])
    return text


# --------------------------------------------------------------------------- errors


class _Fail(Exception):
    """An HTTP error response, rendered in the configured error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        plain: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.plain = plain
        self.headers = headers or []


class _HtmlFail(_Fail):
    """A proxy's error page instead of an API error: always HTML, whatever the shape."""

    def __init__(self) -> None:
        super().__init__(502, "Bad Gateway")


def _unrecognized(name: str) -> _Fail:
    return _Fail(400, f"Unrecognized request argument supplied: {name}", param=name)


def _scripted_failure(status: int, message: str | None) -> _Fail:
    if status == 401:
        return _Fail(
            401,
            message or "Incorrect API key provided.",
            code="invalid_api_key",
        )
    if status == 429:
        return _Fail(
            429,
            message or "Rate limit reached for requests. Please try again in 1s.",
            type="requests",
            code="rate_limit_exceeded",
            headers=[(b"retry-after", b"1")],
        )
    if status >= 500:
        return _Fail(
            status,
            message or "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _Fail(status, message or f"{phrase} (scripted by @fake)")


_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------- requests


@dataclass
class Directives:
    """The ``@fake`` keys; None means "not scripted"."""

    tokens: int | None = None
    tps: float | None = None
    ttft_ms: float | None = None
    reply: str | None = None
    status: int | None = None
    message: str | None = None
    html_error: bool = False
    error_after: int | None = None
    cut_after: int | None = None
    usage: bool = True
    tool_calls: list[dict[str, Any]] | None = None
    # How tool calls are streamed, to imitate real servers' deviations: "standard",
    # "no_index" (Gemini), "reuse_index" (index 0 for every call, distinct ids: Ollama),
    # "one_chunk" (each call whole in one chunk), "no_type", "legacy" (function_call).
    tool_style: str = "standard"
    # How many assistant tool-call rounds to script before answering in text.
    tool_rounds: int = 1
    finish_reason: str | None = None
    keepalive: bool = False
    # Chat: reasoning text streamed before the answer (or the tool calls), in the delta
    # field ``reasoning_field`` ("reasoning_content" like DeepSeek and vLLM, or "reasoning"
    # like OpenRouter), counted in usage as completion_tokens_details.reasoning_tokens.
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"
    # Prompt tokens reported as served from a cache (prompt_tokens_details.cached_tokens).
    cached_tokens: int | None = None

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Directives:
        d = cls()
        casts: dict[str, Any] = {
            "tokens": int,
            "tps": float,
            "ttft_ms": float,
            "status": int,
            "error_after": int,
            "cut_after": int,
            "reply": str,
            "message": str,
            "finish_reason": str,
            "html_error": bool,
            "usage": bool,
            "keepalive": bool,
            "tool_style": str,
            "tool_rounds": int,
            "reasoning": str,
            "reasoning_field": str,
            "cached_tokens": int,
        }
        for key, cast in casts.items():
            # A typo in a demo script should not take the server down: skip the bad key.
            if raw.get(key) is not None:
                with contextlib.suppress(TypeError, ValueError):
                    setattr(d, key, cast(raw[key]))
        if d.reasoning_field not in ("reasoning_content", "reasoning"):
            d.reasoning_field = "reasoning_content"
        calls = raw.get("tool_calls")
        if isinstance(calls, list):
            d.tool_calls = [c for c in calls if isinstance(c, dict) and c.get("name")]
        return d


_DIRECTIVE_RE = re.compile(r"^[ \t]*@fake[ \t]+(\{.*\})[ \t]*(?:\n|$)", re.MULTILINE)


def _split_directives(text: str) -> tuple[str, dict[str, Any]]:
    found: dict[str, Any] = {}
    for match in _DIRECTIVE_RE.finditer(text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(value, dict):
            found.update(value)
    return _DIRECTIVE_RE.sub("", text).strip(), found


def _check_messages(messages: list[Any], cfg: FakeConfig) -> None:
    """Refuse what a stricter server refuses: a system role it lacks, image parts."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer") and role not in cfg.system_roles:
            raise _Fail(
                400,
                f"Unsupported value: 'messages[{i}].role' does not support '{role}' with "
                "this model.",
                param=f"messages[{i}].role",
                code="unsupported_value",
            )
        content = m.get("content")
        images = [
            p
            for p in (content if isinstance(content, list) else [])
            if isinstance(p, dict) and p.get("type") in ("image_url", "input_image")
        ]
        if images and not cfg.supports_images:
            raise _Fail(
                400,
                "Image input is not supported by this model.",
                param=f"messages[{i}].content",
                code="image_input_not_supported",
            )


def _structured_reply(response_format: Any, prompt: str) -> str | None:
    """The JSON answer ``response_format`` asks for; None for plain text."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"answer": generate_reply(prompt, tokens=5).strip()})
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", prompt)
        example = _schema_example(schema, words)
        return json.dumps(example if example is not None else {})
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


@dataclass
class _Choice:
    deltas: list[dict[str, Any]]  # one per streamed piece
    text: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    # One chat-shaped logprobs entry per answer delta when logprobs were asked for.
    logprobs: list[dict[str, Any]] | None = None
    echoed: int = 0  # leading deltas that repeat the prompt (legacy ``echo``)
    # Leading deltas of reasoning text (no logprobs), and that text.
    reasoning: int = 0
    reasoning_text: str = ""


@dataclass
class _Plan:
    kind: str  # "chat" | "completion"
    model: str
    stream: bool
    choices: list[_Choice]
    tps: float
    ttft: float
    include_usage: bool
    directives: Directives
    prompt_tokens: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def step(self) -> float:
        return 1.0 / self.tps if self.tps > 0 else 0.0

    @property
    def usage(self) -> dict[str, Any]:
        # As OpenAI counts them: reasoning tokens are part of the completion tokens.
        completion = sum(len(c.deltas) - c.echoed for c in self.choices)
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        if self.directives.reasoning:
            reasoning = sum(c.reasoning for c in self.choices)
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        if self.directives.cached_tokens is not None:
            cached = max(0, min(self.directives.cached_tokens, self.prompt_tokens))
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        return usage

    def base(self) -> dict[str, Any]:
        if self.kind == "chat":
            head = {"id": f"chatcmpl-{self.id}", "object": "chat.completion.chunk"}
        else:
            head = {"id": f"cmpl-{self.id}", "object": "text_completion"}
        return {**head, "created": self.created, "model": self.model}


def _positive_int(body: dict[str, Any], key: str, *, maximum: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Fail(400, f"Invalid value for '{key}': expected a positive integer.", param=key)
    if maximum is not None and value > maximum:
        raise _Fail(400, f"Invalid value for '{key}': at most {maximum}.", param=key)
    return value


def _stop_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        if len(value) > 4:
            raise _Fail(400, "'stop' accepts at most 4 sequences.", param="stop")
        return [s for s in value if s]
    raise _Fail(400, "Invalid value for 'stop': expected a string or a list.", param="stop")


def _logprobs_asked(kind: str, body: dict[str, Any]) -> int | None:
    """How many alternatives per token were asked for; None when logprobs were not.

    Chat: ``logprobs: true`` and ``top_logprobs`` 0-20; legacy completions: ``logprobs``
    0-5.
    """
    value = body.get("logprobs")
    if kind != "chat":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Fail(400, "Invalid type for 'logprobs': expected an integer.", param="logprobs")
        if not 0 <= value <= MAX_LEGACY_LOGPROBS:
            raise _Fail(
                400,
                f"Invalid value for 'logprobs': must be between 0 and {MAX_LEGACY_LOGPROBS}.",
                param="logprobs",
            )
        return value
    if value is not None and not isinstance(value, bool):
        raise _Fail(400, "Invalid type for 'logprobs': expected a boolean.", param="logprobs")
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise _Fail(
                400,
                f"Invalid value for 'top_logprobs': must be between 0 and {MAX_TOP_LOGPROBS}.",
                param="top_logprobs",
            )
        if not value:
            raise _Fail(
                400,
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true.",
                param="top_logprobs",
            )
    return (top or 0) if value else None


def _legacy_options(kind: str, body: dict[str, Any]) -> bool:
    """Check the legacy-only ``echo`` and ``suffix``; True when the prompt is echoed.

    ``suffix`` is accepted and has no effect: the answer is the text to insert, as OpenAI
    returns it (the suffix itself is never part of the answer).
    """
    if kind == "chat":
        return False
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _Fail(400, "Invalid type for 'suffix': expected a string.", param="suffix")
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise _Fail(400, "Invalid type for 'echo': expected a boolean.", param="echo")
    return bool(echo)


def _apply_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _tool_call_deltas(calls: list[dict[str, Any]], style: str = "standard") -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for k, call in enumerate(calls):
        args = call.get("arguments", {})
        args = args if isinstance(args, str) else json.dumps(args)
        if style == "legacy":
            deltas.append({"function_call": {"name": call["name"], "arguments": ""}})
            deltas += [{"function_call": {"arguments": p}} for p in _pieces(args)]
            continue
        index = 0 if style == "reuse_index" else k
        head: dict[str, Any] = {
            "index": index,
            "id": f"call_{k}",
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        if style == "no_type":
            del head["type"]
        if style in ("no_index", "one_chunk"):
            # The whole call at once; Gemini also leaves out the index.
            head["function"]["arguments"] = args
            if style == "no_index":
                del head["index"]
            deltas.append({"tool_calls": [head]})
            continue
        deltas.append({"tool_calls": [head]})
        for piece in _pieces(args):
            frag: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
            deltas.append({"tool_calls": [frag]})
    return deltas


def _pieces(args: str) -> list[str]:
    size = max(1, min(8, math.ceil(len(args) / 3)))
    return [args[i : i + size] for i in range(0, len(args), size)]


def _schema_example(schema: Any, words: list[str]) -> Any:
    """Plausible arguments for a JSON schema, seeded by the prompt's words."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _schema_example(sub, words) for name, sub in props.items()}
    if kind == "array":
        return [_schema_example(schema.get("items") or {"type": "string"}, words)]
    if kind in ("number", "integer"):
        return 42
    if kind == "boolean":
        return True
    capitalised = [w for w in words if w[:1].isupper()]
    return (capitalised or words or ["example"])[-1]


def _auto_tool_calls(body: dict[str, Any], prompt: str) -> list[dict[str, Any]] | None:
    """Call an offered tool the way a model would: when told to, or when the prompt
    names it (e.g. "weather" for get_weather); only the function a tool_choice names, and
    one call at most under ``parallel_tool_calls: false``."""
    tools = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["name"] == wanted] or tools
    lowered = prompt.lower()
    mentioned = [
        t
        for t in tools
        if any(len(part) >= 4 and part in lowered for part in re.split(r"[_\-]", t["name"].lower()))
    ]
    if choice == "auto" and not mentioned:
        return None
    picked = mentioned or tools[:1]
    if body.get("parallel_tool_calls") is False:
        picked = picked[:1]  # one call at most, as OpenAI does
    words = re.findall(r"[A-Za-z][A-Za-z'-]+", prompt)
    return [
        {"name": t["name"], "arguments": _schema_example(t.get("parameters") or {}, words) or {}}
        for t in picked
    ]


def _tool_call_message(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for k, call in enumerate(calls):
        args = call.get("arguments", {})
        out.append(
            {
                "id": f"call_{k}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


# --------------------------------------------------------------------------- logprobs

MAX_TOP_LOGPROBS = 20
MAX_LEGACY_LOGPROBS = 5
_ALT_WORDS = tuple(w for w in (*_WORDS, *_ADJECTIVES, *_GLUE, *_LINKS) if " " not in w)
_ALT_PUNCT = (".", ",", ";", ":", "!", "?", " -", ")", "...")
_ALT_BREAKS = ("\n\n", " ", ".", " The", " -")


def _alternatives(token: str, rng: random.Random, count: int) -> list[str]:
    """``count`` plausible other tokens for the place of ``token``, all different."""
    core = token.strip()
    lead = token[: len(token) - len(token.lstrip())]
    if "\n" in token or not core:
        pool: tuple[str, ...] = _ALT_BREAKS
    elif core[0].isalnum() or core[0] == "_":
        pool = tuple(lead + (w.capitalize() if core[0].isupper() else w) for w in _ALT_WORDS)
    else:
        pool = tuple(lead + p.strip() if lead else p for p in _ALT_PUNCT)
    out: list[str] = []
    for _ in range(count * 4):
        if len(out) == count:
            break
        candidate = rng.choice(pool)
        if candidate != token and candidate not in out:
            out.append(candidate)
    while len(out) < count:  # a tiny pool: make up distinct ones
        out.append(f"{lead}{core or '_'}{len(out)}")
    return out


def _lp_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _token_logprobs(token: str, rng: random.Random, top: int) -> dict[str, Any]:
    """A chat-shaped ``logprobs.content`` entry with made-up, deterministic numbers.

    The chosen token is usually the most likely one; about one time in five an
    alternative is more likely (only visible when ``top`` > 0).
    """
    if rng.random() < 0.2:
        p = 0.08 + 0.3 * rng.random()
        probs = [p + rng.random() * (0.95 - 2 * p)]
    else:
        p = 1 - 0.6 * rng.random() ** 2
        probs = []
    rest = max(0.0, 1 - p - sum(probs))
    while len(probs) < top:
        share = rest * (0.3 + 0.3 * rng.random())
        probs.append(share)
        rest -= share
    ranked = [(token, p)] + list(zip(_alternatives(token, rng, top), probs[:top], strict=True))
    ranked.sort(key=lambda tp: -tp[1])

    def lp(prob: float) -> float:
        return round(math.log(max(prob, 1e-9)), 6)

    entry = _lp_entry(token, lp(p))
    entry["top_logprobs"] = [_lp_entry(t, lp(q)) for t, q in ranked[:top]]
    return entry


def _legacy_logprobs(entries: list[dict[str, Any]], start_offset: int = 0) -> dict[str, Any]:
    """The legacy completions shape for a run of chat-shaped entries.

    An entry without ``logprob`` (the first token of an echoed prompt) gets nulls, as
    OpenAI sends them.
    """
    tokens, values, tops, offsets = [], [], [], []
    offset = start_offset
    for entry in entries:
        token = entry["token"]
        tokens.append(token)
        offsets.append(offset)
        offset += len(token)
        if "logprob" not in entry:
            values.append(None)
            tops.append(None)
            continue
        values.append(entry["logprob"])
        top = {t["token"]: t["logprob"] for t in entry["top_logprobs"]}
        top.setdefault(token, entry["logprob"])  # the sampled token is always there
        tops.append(top)
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


# --------------------------------------------------------------------------- the app


@dataclass
class _Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    delay: float = 0.0
    stream: Iterator[tuple[float, bytes, bool]] | None = None  # (at seconds, data, is_token)


@dataclass
class _Progress:
    started: bool = False
    tokens: int = 0


class RequestLog(list):
    """The last MAX_LOGGED_REQUESTS requests, oldest first. ``total`` counts every request
    ever logged: compare it, not ``len()``, to tell whether a request was made."""

    total = 0

    def log(self, entry: dict[str, Any]) -> None:
        self.append(entry)
        self.total += 1
        del self[:-MAX_LOGGED_REQUESTS]


class FakeUpstream:
    """ASGI3 app speaking enough of the OpenAI API to demo and test the playground."""

    def __init__(self, config: FakeConfig | None = None, *, personalities: bool = True) -> None:
        self.config = config or FakeConfig()
        self.requests = RequestLog()
        # /<personality>/v1/... is served by a sub-app with that config (same request log).
        self._personalities: dict[str, FakeUpstream] | None = {} if personalities else None

    def _personality(self, path: str) -> tuple[FakeUpstream, str] | None:
        match = _PERSONALITY_PATH.match(path)
        if self._personalities is None or match is None or match[1] not in PERSONALITIES:
            return None
        name = match[1]
        sub = self._personalities.get(name)
        if sub is None:
            sub = FakeUpstream(PERSONALITIES[name], personalities=False)
            sub.requests = self.requests
            self._personalities[name] = sub
        return sub, match[2]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        routed = self._personality(scope["path"])
        if routed is not None:
            sub, path = routed
            prefix = scope["path"][: len(scope["path"]) - len(path)]
            scope = {**scope, "path": path, "root_path": scope.get("root_path", "") + prefix}
            await sub(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        try:
            parsed: Any = json.loads(body) if body else None
            bad_json = False
        except ValueError:
            parsed, bad_json = None, True
        self.requests.log(
            {"method": scope["method"], "path": scope["path"], "headers": headers, "json": parsed}
        )
        try:
            reply = self._dispatch(scope["method"], scope["path"], headers, parsed, bad_json)
        except _Fail as fail:
            reply = self._error_reply(fail)
        await self._serve(reply, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ----------------------------------------------------------------- routing

    def _dispatch(
        self, method: str, path: str, headers: dict[str, str], body: Any, bad_json: bool
    ) -> _Reply:
        routes = {
            "/v1/models": ("GET", None),
            "/v1/chat/completions": ("POST", "chat"),
            "/v1/completions": ("POST", "completion"),
        }
        route = routes.get(path.rstrip("/") if path != "/" else path)
        if route is None:
            raise _Fail(404, f"Invalid URL ({method} {path})")
        expected, kind = route
        if method != expected:
            raise _Fail(405, f"Method {method} not allowed for {path}; use {expected}.")
        if kind is None:
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "playground"}
                for m in self.config.models
            ]
            return _json_reply(200, {"object": "list", "data": data})
        if bad_json:
            raise _Fail(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            )
        if not isinstance(body, dict):
            raise _Fail(400, "The request body must be a JSON object.")
        plan = self._plan(kind, body, headers)
        if plan.stream:
            return _Reply(
                200,
                [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
                stream=_sse_script(plan),
            )
        return self._full_reply(plan)

    def _error_reply(self, fail: _Fail) -> _Reply:
        if isinstance(fail, _HtmlFail):
            return _Reply(fail.status, [(b"content-type", b"text/html")], _HTML_502.encode())
        if self.config.error_shape == "plain":
            text = fail.plain or f"Internal error: {fail.message}"
            headers = [(b"content-type", b"text/plain; charset=utf-8"), *fail.headers]
            return _Reply(fail.status, headers, text.encode())
        error = {"message": fail.message, "type": fail.type, "param": fail.param, "code": fail.code}
        reply = _json_reply(fail.status, {"error": error})
        reply.headers.extend(fail.headers)
        return reply

    # ----------------------------------------------------------------- planning

    def _plan(self, kind: str, body: dict[str, Any], headers: dict[str, str]) -> _Plan:
        cfg = self.config
        if "stream_options" in body and not cfg.supports_stream_options:
            raise _unrecognized("stream_options")
        if cfg.max_tokens_field == "max_tokens" and "max_completion_tokens" in body:
            raise _unrecognized("max_completion_tokens")
        if cfg.max_tokens_field == "max_completion_tokens" and "max_tokens" in body:
            raise _Fail(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                param="max_tokens",
                code="unsupported_parameter",
            )
        if not cfg.supports_tools:
            for name in ("tools", "tool_choice", "functions"):
                if name in body:
                    raise _unrecognized(name)
        for name in cfg.unsupported_params:
            if name in body:
                raise _Fail(
                    400,
                    f"Unsupported parameter: '{name}' is not supported with this model.",
                    param=name,
                    code="unsupported_parameter",
                )

        model = body.get("model")
        if model is None and cfg.default_model:
            model = cfg.default_model
        if not isinstance(model, str) or not model:
            raise _Fail(400, "You must provide a model parameter.", param="model")
        if model not in cfg.models:
            raise _Fail(
                404,
                f"The model `{model}` does not exist",
                param="model",
                code="model_not_found",
                plain="Internal error: model not found",
            )

        if kind == "chat":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _Fail(400, "'messages' must be a non-empty list.", param="messages")
            _check_messages(messages, cfg)
            texts = [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
            users = [m for m in messages if isinstance(m, dict) and m.get("role") in ("user", None)]
            last = users[-1] if users else messages[-1]
            raw_prompt = _content_text(last.get("content")) if isinstance(last, dict) else ""
            final = messages[-1] if isinstance(messages[-1], dict) else {}
            # The tool results the model is answering now: the messages after its call.
            latest_results: list[str] = []
            for m in reversed(messages):
                if not isinstance(m, dict) or m.get("role") not in ("tool", "function"):
                    break
                latest_results.insert(0, _content_text(m.get("content")))
            rounds_done = sum(
                1
                for m in messages
                if isinstance(m, dict)
                and m.get("role") == "assistant"
                and (m.get("tool_calls") or m.get("function_call"))
            )
        else:
            prompt = body.get("prompt", "")
            if isinstance(prompt, list):
                prompt = "\n".join(p for p in prompt if isinstance(p, str))
            raw_prompt = prompt if isinstance(prompt, str) else ""
            texts = [raw_prompt]
        prompt, scripted = _split_directives(raw_prompt)
        header_script = headers.get("x-fake")
        if header_script:
            try:
                extra = json.loads(header_script)
            except ValueError:
                extra = None
            if isinstance(extra, dict):
                scripted.update(extra)
        d = Directives.from_mapping(scripted)
        if "tool_style" not in scripted:
            d.tool_style = cfg.tool_style

        if d.html_error:
            raise _HtmlFail()
        if d.status is not None and 400 <= d.status <= 599:
            raise _scripted_failure(d.status, d.message)

        n = _positive_int(body, "n", maximum=MAX_CHOICES) or 1
        limits = [
            v
            for v in (
                _positive_int(body, "max_tokens"),
                _positive_int(body, "max_completion_tokens"),
            )
            if v is not None
        ]
        max_tokens = min(limits) if limits else None
        stops = _stop_list(body.get("stop"))
        salt = (body.get("temperature"), body.get("seed"))
        if kind == "chat" and final.get("role") in ("tool", "function"):
            # After tool results a model answers from them, unless more rounds are scripted.
            if not d.tool_calls or rounds_done >= d.tool_rounds:
                d.tool_calls = None
                if d.reply is None:
                    d.reply = "From the tool result: " + "; ".join(latest_results) + ". Done."
        elif kind == "chat" and d.tool_calls is None and body.get("tools"):
            d.tool_calls = _auto_tool_calls(body, prompt)
        use_tools = kind == "chat" and bool(d.tool_calls)
        if kind == "chat" and not use_tools and d.reply is None:
            d.reply = _structured_reply(body.get("response_format"), prompt)
        top = _logprobs_asked(kind, body)
        echoed = tokenize(raw_prompt) if _legacy_options(kind, body) else []

        choices = []
        for c in range(n):
            if use_tools:
                assert d.tool_calls is not None
                deltas = _tool_call_deltas(d.tool_calls, d.tool_style)
                reason = "function_call" if d.tool_style == "legacy" else "tool_calls"
                choice = _Choice(deltas, None, d.tool_calls, reason)
            else:
                if d.reply is not None:
                    text = d.reply
                else:
                    text = generate_reply(prompt, choice=c, salt=salt, tokens=d.tokens or 0)
                text, stopped = _apply_stop(text, stops)
                pieces = tokenize(text)
                reason = "stop"
                if max_tokens is not None and len(pieces) > max_tokens:
                    pieces, reason = pieces[:max_tokens], "length"
                pieces = echoed + pieces
                field_name = "content" if kind == "chat" else "text"
                deltas = [{field_name: p} for p in pieces]
                choice = _Choice(deltas, "".join(pieces), None, reason, echoed=len(echoed))
                if top is not None:
                    choice.logprobs = [
                        _token_logprobs(piece, _rng("logprobs", prompt, c, salt, i, piece), top)
                        for i, piece in enumerate(pieces)
                    ]
                    if echoed:  # nothing comes before the prompt's first token
                        choice.logprobs[0] = {"token": pieces[0], "bytes": list(pieces[0].encode())}
            if d.finish_reason:
                choice.finish_reason = d.finish_reason
            if kind == "chat" and d.reasoning:
                thinking = tokenize(d.reasoning)
                choice.deltas[:0] = [{d.reasoning_field: p} for p in thinking]
                choice.reasoning, choice.reasoning_text = len(thinking), d.reasoning
            choices.append(choice)

        tps, ttft = cfg.tokens_per_second, cfg.ttft_ms / 1000
        if model == "demo-fast":
            tps, ttft = 0.0, 0.0
        elif model == "demo-slow":
            tps = 8.0
        if d.tps is not None:
            tps = max(0.0, d.tps)
        if d.ttft_ms is not None:
            ttft = max(0.0, d.ttft_ms / 1000)

        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return _Plan(
            kind=kind,
            model=model,
            stream=bool(body.get("stream")),
            choices=choices,
            tps=tps,
            ttft=ttft,
            include_usage=include_usage,
            directives=d,
            prompt_tokens=sum(len(_split_directives(t)[0].split()) for t in texts),
        )

    def _full_reply(self, plan: _Plan) -> _Reply:
        d = plan.directives
        delay = plan.ttft + plan.step * max(len(c.deltas) for c in plan.choices)
        if d.error_after is not None:
            fail = _scripted_failure(500, d.message)
            reply = self._error_reply(fail)
            reply.delay = delay
            return reply
        choices = []
        for i, c in enumerate(plan.choices):
            if plan.kind == "chat":
                message: dict[str, Any] = {"role": "assistant", "content": c.text}
                if c.reasoning_text:
                    message[d.reasoning_field] = c.reasoning_text
                if c.tool_calls:
                    message["tool_calls"] = _tool_call_message(c.tool_calls)
                logprobs = {"content": c.logprobs, "refusal": None} if c.logprobs else None
                choices.append(
                    {
                        "index": i,
                        "message": message,
                        "logprobs": logprobs,
                        "finish_reason": c.finish_reason,
                    }
                )
            else:
                logprobs = _legacy_logprobs(c.logprobs) if c.logprobs is not None else None
                choices.append(
                    {
                        "index": i,
                        "text": c.text,
                        "logprobs": logprobs,
                        "finish_reason": c.finish_reason,
                    }
                )
        obj = plan.base()
        obj["object"] = "chat.completion" if plan.kind == "chat" else "text_completion"
        obj["choices"] = choices
        if d.usage:
            obj["usage"] = plan.usage
        reply = _json_reply(200, obj)
        if d.cut_after is not None:
            # Simulate a connection that drops mid-body: a truncated JSON document.
            reply.body = reply.body[: max(1, len(reply.body) // 2)]
            reply.headers = [(b"content-type", _JSON.encode())]
        reply.delay = delay
        return reply

    # ----------------------------------------------------------------- sending

    async def _serve(self, reply: _Reply, receive: Any, send: Any) -> None:
        progress = _Progress()
        work = asyncio.ensure_future(_send_reply(reply, send, progress))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            watch.cancel()
            await asyncio.wait((work, watch))
        if not work.cancelled() and work.exception() is not None:
            exc = work.exception()
            if isinstance(exc, OSError):
                logger.debug("fake upstream: send failed (%s); stopped", exc)
            else:
                logger.error("fake upstream: reply failed", exc_info=exc)
                if not progress.started:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [(b"content-type", b"text/plain")],
                        }
                    )
                    await send({"type": "http.response.body", "body": b"Internal Server Error"})
        elif work.cancelled() and watch.done() and not watch.cancelled():
            logger.info("fake upstream: client went away; stopped after %d tokens", progress.tokens)


def _json_reply(status: int, obj: Any) -> _Reply:
    return _Reply(status, [(b"content-type", _JSON.encode())], json.dumps(obj).encode())


async def _read_body(receive: Any) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_for_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_reply(reply: _Reply, send: Any, progress: _Progress) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    if reply.delay > 0:
        await asyncio.sleep(reply.delay)
    headers = list(reply.headers)
    if reply.stream is None:
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    progress.started = True
    if reply.stream is None:
        await send({"type": "http.response.body", "body": reply.body})
        return
    for at, data, is_token in reply.stream:
        delay = start + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": data, "more_body": True})
        progress.tokens += is_token
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def _sse_script(plan: _Plan) -> Iterator[tuple[float, bytes, bool]]:
    """The stream as (time offset, bytes, counts-as-token) steps, computed lazily."""
    d = plan.directives
    last_at = 0.0

    def chunk(choices: list[dict[str, Any]]) -> bytes:
        obj = {**plan.base(), "choices": choices}
        if plan.include_usage:
            obj["usage"] = None
        return _sse(obj)

    def at(t: float, data: bytes, is_token: bool = False) -> Iterator[tuple[float, bytes, bool]]:
        nonlocal last_at
        if d.keepalive:
            yield (last_at + t) / 2, b": keep-alive\n\n", False
        last_at = t
        yield t, data, is_token

    offsets = [0] * len(plan.choices)  # legacy text_offset of each choice's next token

    def choice_obj(
        index: int, delta: dict[str, Any], finish: str | None, piece: int | None = None
    ) -> dict[str, Any]:
        c = plan.choices[index]
        entries = c.logprobs
        entry = None
        if entries is not None and piece is not None and piece >= c.reasoning:
            entry = entries[piece - c.reasoning]
        if plan.kind == "chat":
            logprobs = {"content": [entry], "refusal": None} if entry else None
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        text = delta.get("text", "")
        logprobs = _legacy_logprobs([entry], offsets[index]) if entry else None
        offsets[index] += len(text)
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}

    def broken(emitted: int) -> Iterator[tuple[float, bytes, bool]] | None:
        if d.error_after is not None and emitted >= d.error_after:
            message = d.message or "The server had an error while processing your request."
            error = {"error": {"message": message, "type": "server_error", "code": None}}
            return at(t, _sse(error))
        if d.cut_after is not None and emitted >= d.cut_after:
            return iter(())
        return None

    t = plan.ttft
    if plan.kind == "chat":
        for i in range(len(plan.choices)):
            yield from at(t, chunk([choice_obj(i, {"role": "assistant", "content": ""}, None)]))
    emitted = 0
    rounds = max(len(c.deltas) for c in plan.choices)
    for r in range(rounds + 1):
        t = plan.ttft + r * plan.step
        for i, c in enumerate(plan.choices):
            if r > len(c.deltas):
                continue
            stop = broken(emitted)
            if stop is not None:
                yield from stop
                return
            if r < len(c.deltas):
                yield from at(t, chunk([choice_obj(i, c.deltas[r], None, r)]), True)
                emitted += 1
            else:
                yield from at(t, chunk([choice_obj(i, {}, c.finish_reason)]))
    if plan.include_usage and d.usage:
        yield from at(t, _sse({**plan.base(), "choices": [], "usage": plan.usage}))
    yield from at(t, b"data: [DONE]\n\n")


app = FakeUpstream()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tps", type=float, default=FakeConfig.tokens_per_second)
    parser.add_argument("--ttft-ms", type=int, default=FakeConfig.ttft_ms)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    # daphne.server installs Twisted's asyncio reactor on import, so import it only here.
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    application = FakeUpstream(FakeConfig(tokens_per_second=args.tps, ttft_ms=args.ttft_ms))
    endpoints = build_endpoint_description_strings(host=args.host, port=args.port)
    Server(application=application, endpoints=endpoints, verbosity=0).run()


if __name__ == "__main__":
    main()
