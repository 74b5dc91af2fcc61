"""'Copy as code': the exact request a run sent, as curl, Python (openai SDK) and JavaScript.

The body is the one the server sent, unchanged; the API key and the extra headers' values
are never in the output: each becomes an environment variable (``OPENAI_API_KEY``,
``X-Org-Id`` -> ``X_ORG_ID``).  Every string is embedded as an escaped literal of its
language, so no body can break out of it: curl reads the JSON from a quoted heredoc (the
shell expands nothing inside), Python and JavaScript get string literals in which quotes,
backslashes, control, invisible and bidirectional characters are all escaped.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import shlex
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from chat.codegen.literals import literal, str_literal
from chat.upstream.client import api_url

__all__ = ["export_request"]

# The SDK methods for each path, and what their text is called in a choice.
_KINDS = {
    "chat/completions": ("chat.completions", "message.content", "delta.content", "delta?.content"),
    "completions": ("completions", "text", "text", "text"),
    # The Responses API: typed events, no choices (see _python_output, _javascript_stream).
    "responses": ("responses", "output_text", "delta", "delta"),
}
_SDK_CLASSES = {
    "chat/completions": ("openai.resources.chat.completions", "Completions"),
    "completions": ("openai.resources.completions", "Completions"),
    "responses": ("openai.resources.responses", "Responses"),
}
# The SDK's own controls; a body key with one of these names is a provider parameter and
# must go through extra_body.
_SDK_CONTROLS = frozenset({"self", "extra_headers", "extra_query", "extra_body", "timeout"})


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Named arguments of the openai SDK (2.x) when it cannot be imported to ask it.
_STANDARD_PARAMS = {
    "chat/completions": _names(
        "messages model audio frequency_penalty function_call functions logit_bias logprobs "
        "max_completion_tokens max_tokens metadata modalities n parallel_tool_calls prediction "
        "presence_penalty prompt_cache_key reasoning_effort response_format safety_identifier "
        "seed service_tier stop store stream stream_options temperature tool_choice tools "
        "top_logprobs top_p user verbosity web_search_options"
    ),
    "completions": _names(
        "model prompt best_of echo frequency_penalty logit_bias logprobs max_tokens n "
        "presence_penalty seed stop stream stream_options suffix temperature top_p user"
    ),
    "responses": _names(
        "background conversation include input instructions max_output_tokens max_tool_calls "
        "metadata model parallel_tool_calls previous_response_id prompt prompt_cache_key "
        "reasoning safety_identifier service_tier store stream stream_options temperature "
        "text tool_choice tools top_logprobs top_p truncation user"
    ),
}

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110 token characters: anything else cannot be a header name.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SHELL_PLAIN_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_INDENT = "    "
_JS_INDENT = "  "


def export_request(
    *,
    base_url: str,
    path: str,
    body: dict[str, Any],
    header_names: Iterable[str] = (),
    api_key_env: str = "OPENAI_API_KEY",
) -> dict[str, str]:
    """``{"curl": ..., "python": ..., "javascript": ...}`` sending ``body`` to ``path``.

    ``path`` is ``chat/completions``, ``responses`` or ``completions`` (what the run used);
    ``header_names``
    are the endpoint's extra headers, whose values are secrets and come from environment
    variables.  Raises ``ValueError`` for another path, a name that cannot be an environment
    variable or a header.
    """
    kind = path.strip().strip("/")
    if kind not in _KINDS:
        raise ValueError(f"cannot export a request to {path!r}")
    if not _ENV_NAME_RE.match(api_key_env):
        raise ValueError(f"{api_key_env!r} is not an environment variable name")
    url = api_url(base_url, kind)
    headers = _header_envs(header_names, api_key_env)
    return {
        "curl": _curl(url, body, headers, api_key_env),
        "python": _python(base_url, kind, body, headers, api_key_env),
        "javascript": _javascript(url, kind, body, headers, api_key_env),
    }


def _header_envs(names: Iterable[str], api_key_env: str) -> list[tuple[str, str]]:
    """(header name, environment variable) pairs, one per header (case-insensitively)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    taken = {api_key_env}
    for name in names:
        name = name.strip()
        if not _HEADER_NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        env = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "HEADER"
        if env[0].isdigit():
            env = "_" + env
        base, k = env, 2
        while env in taken:
            env, k = f"{base}_{k}", k + 1
        taken.add(env)
        out.append((name, env))
    return out


def _custom_auth(headers: list[tuple[str, str]]) -> bool:
    # A custom Authorization header replaces the Bearer key, as in the upstream client.
    return any(name.lower() == "authorization" for name, _ in headers)


def _json_text(body: Any) -> str:
    """Pretty JSON (keys in order, two-space indent) with every string safely escaped."""
    return literal(body, "json", "  ", 0, inline=False)


# --------------------------------------------------------------------------- curl


def _curl(url: str, body: dict[str, Any], headers: list[tuple[str, str]], key_env: str) -> str:
    lines = [f"curl -sS -N {shlex.quote(url)}", '-H "Content-Type: application/json"']
    if not _custom_auth(headers):
        lines.append(f'-H "Authorization: Bearer ${key_env}"')
    for name, env in headers:
        if _SHELL_PLAIN_RE.match(name):
            lines.append(f'-H "{name}: ${env}"')
        else:  # single-quote the name so the shell does nothing with $, !, ` or quotes
            lines.append(f'-H {shlex.quote(name + ": ")}"${env}"')
    payload = _json_text(body)
    # The heredoc ends at a line holding just the delimiter; pretty JSON never has one
    # (strings keep their newlines escaped), but pick one that is absent anyway.
    delimiter, k = "JSON", 1
    while delimiter in payload.splitlines():
        delimiter, k = f"JSON_{k}", k + 1
    lines.append(f"--data-binary @- <<'{delimiter}'")
    return " \\\n  ".join(lines) + "\n" + payload + "\n" + delimiter + "\n"


# --------------------------------------------------------------------------- Python


@functools.cache
def _accepted_params(kind: str) -> frozenset[str]:
    """Body keys the SDK takes as named arguments, from its own signature when importable."""
    module_name, class_name = _SDK_CLASSES[kind]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        names = frozenset(inspect.signature(cls.create).parameters)
    except Exception:
        return _STANDARD_PARAMS[kind]
    return names - _SDK_CONTROLS


def _python(
    base_url: str,
    kind: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]],
    key_env: str,
) -> str:
    method, message_text, delta_text, _ = _KINDS[kind]
    client = _python_client(base_url, headers, key_env)
    args, no_model = _python_args(kind, body)
    out = [
        "# pip install openai",
        "import os",
        "",
        "from openai import OpenAI, omit" if no_model else "from openai import OpenAI",
        "",
        "client = OpenAI(",
        *(f"{_INDENT}{line}," for line in client),
        ")",
        "",
        f"response = client.{method}.create(",
        *(f"{_INDENT}{arg}," for arg in args),
        ")",
        *(
            _python_responses_output(body)
            if kind == "responses"
            else _python_output(body, message_text, delta_text)
        ),
    ]
    return "\n".join(out) + "\n"


def _py_env(name: str) -> str:
    return f"os.environ[{str_literal(name, 'py')}]"


def _py_dict_arg(name: str, pairs: list[tuple[str, str]]) -> str:
    """``name={...}``, one already-literal ``key: value`` pair a line."""
    lines = [f"{_INDENT * 2}{key}: {value}," for key, value in pairs]
    return f"{name}={{\n" + "\n".join(lines) + "\n" + _INDENT + "}"


def _python_client(base_url: str, headers: list[tuple[str, str]], key_env: str) -> list[str]:
    """The OpenAI(...) arguments: base URL, key, extra headers, the URL's query."""
    parts = urlsplit(base_url.strip())
    sdk_base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    query = parse_qsl(parts.query, keep_blank_values=True)
    client = [f"base_url={str_literal(sdk_base, 'py')}"]
    # With a custom Authorization header (below), the SDK's own key is not used.
    client.append('api_key="unused"' if _custom_auth(headers) else f"api_key={_py_env(key_env)}")
    if headers:
        pairs = [(str_literal(n, "py"), _py_env(e)) for n, e in headers]
        client.append(_py_dict_arg("default_headers", pairs))
    if query:
        pairs = [(str_literal(k, "py"), str_literal(v, "py")) for k, v in query]
        client.append(_py_dict_arg("default_query", pairs))
    return client


def _python_args(kind: str, body: dict[str, Any]) -> tuple[list[str], bool]:
    """The create(...) arguments, and whether the model is left out (``omit``)."""
    accepted = _accepted_params(kind)
    named = {k: v for k, v in body.items() if k in accepted}
    extra = {k: v for k, v in body.items() if k not in accepted}
    args = [f"{k}={literal(v, 'py', _INDENT, 1)}" for k, v in named.items()]
    # No model in the body (the endpoint's default): the SDK requires the argument, and
    # `omit` sends none.
    no_model = "model" in accepted and "model" not in body
    if no_model:
        args.append("model=omit")
    if extra:
        args.append(f"extra_body={literal(extra, 'py', _INDENT, 1)}")
    return args, no_model


def _python_output(body: dict[str, Any], message_text: str, delta_text: str) -> list[str]:
    """Printing the answer: each streamed delta as it comes, or the whole message."""
    if body.get("stream") is True:
        return [
            "for chunk in response:",
            f"{_INDENT}for choice in chunk.choices:",
            f"{_INDENT * 2}if choice.index == 0 and choice.{delta_text}:",
            f'{_INDENT * 3}print(choice.{delta_text}, end="", flush=True)',
            "print()",
        ]
    return [f"print(response.choices[0].{message_text})"]


def _python_responses_output(body: dict[str, Any]) -> list[str]:
    """The Responses API: the text deltas among the typed events, or the whole text."""
    if body.get("stream") is True:
        return [
            "for event in response:",
            f'{_INDENT}if event.type == "response.output_text.delta":',
            f'{_INDENT * 2}print(event.delta, end="", flush=True)',
            f'{_INDENT}elif event.type in ("error", "response.failed"):',
            f"{_INDENT * 2}raise RuntimeError(event)",
            "print()",
        ]
    return ["print(response.output_text)"]


# --------------------------------------------------------------------------- JavaScript


def _javascript(
    url: str,
    kind: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]],
    key_env: str,
) -> str:
    _, message_text, _, delta_text = _KINDS[kind]
    i1 = _JS_INDENT
    if body.get("stream") is True:
        output = _javascript_stream(delta_text, responses=kind == "responses")
    elif kind == "responses":
        output = [
            f"{i1}const completion = await response.json();",
            f"{i1}const text = completion.output",
            f'{i1}{i1}.filter((item) => item.type === "message")',
            f"{i1}{i1}.flatMap((item) => item.content)",
            f'{i1}{i1}.filter((part) => part.type === "output_text")',
            f"{i1}{i1}.map((part) => part.text)",
            f'{i1}{i1}.join("");',
            f"{i1}console.log(text);",
        ]
    else:
        output = [
            f"{i1}const completion = await response.json();",
            f"{i1}console.log(completion.choices[0].{message_text});",
        ]
    out = [
        "// Node 18+ (node request.js). In a browser, put the values in place of process.env.",
        f"const body = {literal(body, 'js', _JS_INDENT, 0)};",
        "",
        "async function main() {",
        *_javascript_fetch(url, headers, key_env),
        *output,
        "}",
        "",
        "main().catch((error) => {",
        f"{i1}console.error(error);",
        f"{i1}process.exitCode = 1;",
        "});",
    ]
    return "\n".join(out) + "\n"


def _javascript_fetch(url: str, headers: list[tuple[str, str]], key_env: str) -> list[str]:
    """The POST with its headers (values from process.env), and an HTTP error thrown."""
    i1, i2, i3 = _JS_INDENT, _JS_INDENT * 2, _JS_INDENT * 3
    header_lines = [f'{i3}"Content-Type": "application/json",']
    if not _custom_auth(headers):
        header_lines.append(f"{i3}Authorization: `Bearer ${{process.env.{key_env}}}`,")
    header_lines += [f"{i3}{str_literal(n, 'js')}: process.env.{e}," for n, e in headers]
    return [
        f"{i1}const response = await fetch({str_literal(url, 'js')}, {{",
        f'{i2}method: "POST",',
        f"{i2}headers: {{",
        *header_lines,
        f"{i2}}},",
        f"{i2}body: JSON.stringify(body),",
        f"{i1}}});",
        f"{i1}if (!response.ok) {{",
        f"{i2}throw new Error(`HTTP ${{response.status}}: ${{await response.text()}}`);",
        f"{i1}}}",
    ]


def _javascript_stream(delta_text: str, *, responses: bool = False) -> list[str]:
    """Reading server-sent events and printing the first choice's deltas as they come
    (the Responses API: the text deltas among its typed events)."""
    i1, i2, i3 = _JS_INDENT, _JS_INDENT * 2, _JS_INDENT * 3
    if responses:
        handle = [
            f'{i2}if (chunk.type === "error" || chunk.type === "response.failed") {{',
            f"{i3}throw new Error(JSON.stringify(chunk));",
            f"{i2}}}",
            f'{i2}if (chunk.type === "response.output_text.delta") {{',
            f"{i3}process.stdout.write(chunk.delta);",
            f"{i2}}}",
        ]
    else:
        handle = [
            f"{i2}if (chunk.error) throw new Error(JSON.stringify(chunk.error));",
            f"{i2}for (const choice of chunk.choices ?? []) {{",
            f"{i3}if (choice.index === 0 && choice.{delta_text}) {{",
            f"{i3}{i1}process.stdout.write(choice.{delta_text});",
            f"{i3}}}",
            f"{i2}}}",
        ]
    return [
        f"{i1}// Server-sent events: data lines, an empty line ends each event.",
        f"{i1}const reader = response.body.getReader();",
        f"{i1}const decoder = new TextDecoder();",
        f'{i1}let buffer = "";',
        f"{i1}let data = [];",
        f"{i1}const dispatch = () => {{",
        f'{i2}const payload = data.join("\\n");',
        f"{i2}data = [];",
        f'{i2}if (!payload || payload === "[DONE]") return;',
        f"{i2}const chunk = JSON.parse(payload);",
        *handle,
        f"{i1}}};",
        f"{i1}for (;;) {{",
        f"{i2}const {{ value, done }} = await reader.read();",
        f"{i2}buffer += done ? decoder.decode() : decoder.decode(value, {{ stream: true }});",
        f"{i2}// A final \\r may be half of a \\r\\n: keep it for the next read.",
        f'{i2}const end = !done && buffer.endsWith("\\r") ? buffer.length - 1 : buffer.length;',
        f"{i2}const lines = buffer.slice(0, end).split(/\\r\\n|\\r|\\n/);",
        f'{i2}buffer = done ? "" : lines.pop() + buffer.slice(end);',
        f"{i2}for (const line of lines) {{",
        f'{i3}if (line === "") dispatch();',
        f'{i3}else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));',
        f"{i2}}}",
        f"{i2}if (done) break;",
        f"{i1}}}",
        f"{i1}dispatch();",
        f'{i1}process.stdout.write("\\n");',
    ]
