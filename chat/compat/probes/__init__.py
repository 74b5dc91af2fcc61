"""The probes of a compatibility check, one per feature, in the order of the report.

How each decides its status is in its docstring; ``base`` says what the statuses mean.
The probes live by kind: ``basic`` (lists, plain and streamed answers, roles, images,
errors), ``sampling`` (limits, stop, n, seed, logprobs), ``structured`` (JSON output) and
``tools``; ``common`` holds what they share. This module keeps the table.
"""

from __future__ import annotations

from ..base import Probe
from .basic import (
    NO_IMAGES,
    _role_probe,
    probe_chat,
    probe_completions,
    probe_error_shape,
    probe_image,
    probe_models,
    probe_stream,
    probe_stream_usage,
)
from .common import CLOCK, PARALLEL_PROMPT, PNG_DATA_URL, TOOL_PROMPT, WEATHER
from .responses import (
    _tools_probe,
    probe_responses,
    probe_responses_chain,
    probe_responses_json_schema,
    probe_responses_max_output,
    probe_responses_reasoning,
    probe_responses_store,
    probe_responses_stream,
    probe_responses_usage,
)
from .sampling import _limit_probe, probe_logprobs, probe_n, probe_seed, probe_stop
from .structured import SCHEMA, probe_json_object, probe_json_schema
from .tools import _tool_probe, probe_tool_stream

__all__ = [
    "CLOCK",
    "NO_IMAGES",
    "PNG_DATA_URL",
    "PROBES",
    "PROBE_KEYS",
    "SCHEMA",
    "WEATHER",
    "probe_chat",
    "probe_completions",
    "probe_error_shape",
    "probe_image",
    "probe_json_object",
    "probe_json_schema",
    "probe_logprobs",
    "probe_models",
    "probe_n",
    "probe_seed",
    "probe_stop",
    "probe_stream",
    "probe_stream_usage",
    "probe_tool_stream",
]


PROBES: tuple[Probe, ...] = (
    Probe("models", "Models list (GET /models)", probe_models, phase=1),
    Probe("chat", "Chat, not streamed", probe_chat),
    Probe("stream", "Streaming", probe_stream),
    Probe("stream_usage", "stream_options.include_usage", probe_stream_usage),
    Probe("max_tokens", "max_tokens", _limit_probe("max_tokens"), phase=1),
    Probe(
        "max_completion_tokens",
        "max_completion_tokens",
        _limit_probe("max_completion_tokens"),
        phase=1,
    ),
    Probe("stop", "stop sequences", probe_stop),
    Probe("n", "n > 1 (several choices)", probe_n),
    # Alone, after the others: concurrent requests may change the text on some servers,
    # which the probe tests on purpose, with two requests of its own.
    Probe("seed", "seed (same seed, same text)", probe_seed, phase=3),
    Probe("logprobs", "logprobs / top_logprobs", probe_logprobs),
    Probe("json_object", "response_format json_object", probe_json_object),
    Probe("json_schema", "response_format json_schema", probe_json_schema),
    Probe(
        "tools_auto",
        "Tools, tool_choice auto",
        _tool_probe(tools=[WEATHER], prompt=TOOL_PROMPT, choice="auto", want=1, what="tools"),
    ),
    Probe(
        "tools_required",
        "Tools, tool_choice required",
        _tool_probe(
            tools=[WEATHER],
            prompt="Say hello.",
            choice="required",
            want=1,
            what='tool_choice "required"',
        ),
    ),
    Probe(
        "tools_parallel",
        "Parallel tool calls",
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=PARALLEL_PROMPT,
            choice="auto",
            want=2,
            what="parallel tool calls",
        ),
    ),
    Probe(
        "tool_choice_named",
        "Tools, tool_choice naming a function",
        # The prompt asks for the weather; tool_choice names the clock.
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=TOOL_PROMPT,
            choice={"type": "function", "function": {"name": CLOCK["function"]["name"]}},
            want=1,
            what="a tool_choice naming a function",
            control={"tool_choice": "required"},
        ),
    ),
    Probe(
        "parallel_false",
        "parallel_tool_calls: false",
        _tool_probe(
            tools=[WEATHER, CLOCK],
            prompt=PARALLEL_PROMPT,
            choice="required",
            want=1,
            what="parallel_tool_calls false",
            at_most=1,
            control={"parallel_tool_calls": True},
            parallel_tool_calls=False,
        ),
    ),
    Probe("tool_stream", "Streamed tool calls (index)", probe_tool_stream),
    Probe("system_role", "system role", _role_probe("system")),
    Probe("developer_role", "developer role", _role_probe("developer")),
    Probe("image", "Image input (PNG data URL)", probe_image),
    Probe("completions", "Legacy /completions", probe_completions),
    Probe("error_shape", "Error shape (unknown model)", probe_error_shape),
    # The Responses API (POST /responses), in the order of a first look at it.
    Probe("responses", "Responses API (POST /responses)", probe_responses),
    Probe("responses_stream", "Responses: streamed typed events", probe_responses_stream),
    Probe("responses_usage", "Responses: usage in response.completed", probe_responses_usage),
    Probe("responses_tools_auto", "Responses: function tools, auto", _tools_probe("auto")),
    Probe(
        "responses_tools_required",
        "Responses: function tools, required",
        _tools_probe("required"),
    ),  # fmt: skip
    Probe(
        "responses_json_schema",
        "Responses: text.format json_schema",
        probe_responses_json_schema,
    ),  # fmt: skip
    Probe("responses_chain", "Responses: previous_response_id", probe_responses_chain),
    Probe("responses_store", "Responses: store (GET /responses/{id})", probe_responses_store),
    Probe("responses_reasoning", "Responses: reasoning items", probe_responses_reasoning),
    Probe("responses_max_output", "Responses: max_output_tokens", probe_responses_max_output),
)
PROBE_KEYS = tuple(p.key for p in PROBES)
