"""Answer planning: from a checked request to the choices, their deltas and the pacing."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .config import MAX_CHOICES, FakeConfig
from .directives import Directives, _split_directives, read_script
from .errors import _Fail, _HtmlFail, _scripted_failure, _unrecognized
from .logprobs import _token_logprobs
from .params import (
    _apply_stop,
    _check_messages,
    _content_text,
    _legacy_options,
    _logprobs_asked,
    _positive_int,
    _stop_list,
)
from .text import _rng, generate_reply, tokenize
from .tools import _auto_tool_calls, _structured_reply, _tool_call_deltas


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


@dataclass
class _Prompt:
    """What a request asks: the last user text and the context the answer depends on."""

    raw: str  # with its @fake lines
    texts: list[str]  # every message's text, for prompt_tokens
    final: dict[str, Any] = field(default_factory=dict)  # chat: the last message
    latest_results: list[str] = field(default_factory=list)  # chat: tool results answered now
    rounds_done: int = 0  # chat: assistant tool-call rounds so far


@dataclass
class _Sampling:
    n: int
    max_tokens: int | None
    stops: list[str]
    salt: tuple[Any, Any]
    # Read after the answer is chosen (``logprobs`` errors come after the others).
    top: int | None = None  # alternatives per token; None: no logprobs
    echoed: list[str] = field(default_factory=list)  # legacy ``echo``: the prompt's tokens


def _check_supported(cfg: FakeConfig, body: dict[str, Any]) -> None:
    """Refuse the parameters this server does not know, as such a server would."""
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


def _model(cfg: FakeConfig, body: dict[str, Any]) -> str:
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
    return model


def _chat_prompt(cfg: FakeConfig, body: dict[str, Any]) -> _Prompt:
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
    return _Prompt(raw_prompt, texts, final, latest_results, rounds_done)


def _completion_prompt(body: dict[str, Any]) -> _Prompt:
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = "\n".join(p for p in prompt if isinstance(p, str))
    raw_prompt = prompt if isinstance(prompt, str) else ""
    return _Prompt(raw_prompt, [raw_prompt])


def _directives(cfg: FakeConfig, scripted: dict[str, Any]) -> Directives:
    """The scripted keys, failing here when the script asks for an error."""
    d = Directives.from_mapping(scripted)
    if "tool_style" not in scripted:
        d.tool_style = cfg.tool_style
    if d.html_error:
        raise _HtmlFail()
    if d.status is not None and 400 <= d.status <= 599:
        raise _scripted_failure(d.status, d.message)
    return d


def _sampling(body: dict[str, Any]) -> _Sampling:
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
    return _Sampling(n, max_tokens, stops, salt)


def _choose_answer(kind: str, body: dict[str, Any], d: Directives, p: _Prompt, prompt: str) -> bool:
    """Settle ``d.tool_calls`` and ``d.reply``; True when the answer is tool calls."""
    if kind == "chat" and p.final.get("role") in ("tool", "function"):
        # After tool results a model answers from them, unless more rounds are scripted.
        if not d.tool_calls or p.rounds_done >= d.tool_rounds:
            d.tool_calls = None
            if d.reply is None:
                d.reply = "From the tool result: " + "; ".join(p.latest_results) + ". Done."
    elif kind == "chat" and d.tool_calls is None and body.get("tools"):
        d.tool_calls = _auto_tool_calls(body, prompt)
    use_tools = kind == "chat" and bool(d.tool_calls)
    if kind == "chat" and not use_tools and d.reply is None:
        d.reply = _structured_reply(body.get("response_format"), prompt)
    return use_tools


def _tool_choice(d: Directives) -> _Choice:
    assert d.tool_calls is not None
    deltas = _tool_call_deltas(d.tool_calls, d.tool_style)
    reason = "function_call" if d.tool_style == "legacy" else "tool_calls"
    return _Choice(deltas, None, d.tool_calls, reason)


def _text_choice(kind: str, d: Directives, s: _Sampling, prompt: str, c: int) -> _Choice:
    if d.reply is not None:
        text = d.reply
    else:
        text = generate_reply(prompt, choice=c, salt=s.salt, tokens=d.tokens or 0)
    text, stopped = _apply_stop(text, s.stops)
    pieces = tokenize(text)
    reason = "stop"
    if s.max_tokens is not None and len(pieces) > s.max_tokens:
        pieces, reason = pieces[: s.max_tokens], "length"
    pieces = s.echoed + pieces
    field_name = "content" if kind == "chat" else "text"
    deltas = [{field_name: p} for p in pieces]
    choice = _Choice(deltas, "".join(pieces), None, reason, echoed=len(s.echoed))
    if s.top is not None:
        choice.logprobs = [
            _token_logprobs(piece, _rng("logprobs", prompt, c, s.salt, i, piece), s.top)
            for i, piece in enumerate(pieces)
        ]
        if s.echoed:  # nothing comes before the prompt's first token
            choice.logprobs[0] = {"token": pieces[0], "bytes": list(pieces[0].encode())}
    return choice


def _add_reasoning(choice: _Choice, d: Directives) -> None:
    assert d.reasoning
    thinking = tokenize(d.reasoning)
    choice.deltas[:0] = [{d.reasoning_field: p} for p in thinking]
    choice.reasoning, choice.reasoning_text = len(thinking), d.reasoning


def _choices(kind: str, d: Directives, s: _Sampling, prompt: str, use_tools: bool) -> list[_Choice]:
    choices = []
    for c in range(s.n):
        choice = _tool_choice(d) if use_tools else _text_choice(kind, d, s, prompt, c)
        if d.finish_reason:
            choice.finish_reason = d.finish_reason
        if kind == "chat" and d.reasoning:
            _add_reasoning(choice, d)
        choices.append(choice)
    return choices


def _pacing(cfg: FakeConfig, model: str, d: Directives) -> tuple[float, float]:
    """Tokens per second and the time to the first token, in seconds."""
    tps, ttft = cfg.tokens_per_second, cfg.ttft_ms / 1000
    if model == "demo-fast":
        tps, ttft = 0.0, 0.0
    elif model == "demo-slow":
        tps = 8.0
    if d.tps is not None:
        tps = max(0.0, d.tps)
    if d.ttft_ms is not None:
        ttft = max(0.0, d.ttft_ms / 1000)
    return tps, ttft


def plan_answer(cfg: FakeConfig, kind: str, body: dict[str, Any], headers: dict[str, str]) -> _Plan:
    """The whole answer to a chat or legacy completions request, or a ``_Fail``."""
    _check_supported(cfg, body)
    model = _model(cfg, body)
    p = _chat_prompt(cfg, body) if kind == "chat" else _completion_prompt(body)
    prompt, scripted = read_script(p.raw, headers)
    d = _directives(cfg, scripted)
    s = _sampling(body)
    use_tools = _choose_answer(kind, body, d, p, prompt)
    s.top = _logprobs_asked(kind, body)
    s.echoed = tokenize(p.raw) if _legacy_options(kind, body) else []
    choices = _choices(kind, d, s, prompt, use_tools)
    tps, ttft = _pacing(cfg, model, d)
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
        prompt_tokens=sum(len(_split_directives(t)[0].split()) for t in p.texts),
    )
