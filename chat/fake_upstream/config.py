"""Server-wide settings and the named personalities (the servers the fake imitates)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_MODELS = ("demo", "demo-fast", "demo-slow")
# The module-level app may serve a long-running demo; keep the request log bounded.
MAX_LOGGED_REQUESTS = 500
MAX_CHOICES = 16


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
    # The Responses API (responses_api.py): served at all; "store" (previous_response_id
    # served from what was stored), "stateless" (refused with a 400: Ollama, OpenRouter)
    # or "ignore_store" (store accepted, nothing kept: vLLM unless configured); whether
    # events carry sequence_number and output_index (llama.cpp's leave them out).
    responses: bool = True
    responses_state: str = "store"
    responses_sequence: bool = True


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
    "no-responses": FakeConfig(responses=False),
    "responses-stateless": FakeConfig(responses_state="stateless"),
    "responses-ignore-store": FakeConfig(responses_state="ignore_store"),
    "responses-no-sequence": FakeConfig(responses_sequence=False),
}
_PERSONALITY_PATH = re.compile(r"^/([a-z0-9-]+)(/v1(?:/.*)?)$")
