"""The one table of request parameters.

The panel, validation, the request body, presets and the code export all read PARAMS;
adding a parameter is one row. Only parameters the user set are sent: a default the
endpoint might reject is never sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from chat.quirks import quirk
from chat.toolschema import SchemaTooDeep, check_depth

CHAT = ("chat",)
COMPLETION = ("completion",)
BOTH = ("chat", "completion")

# The wire APIs of a chat lane (chat.models.Lane.API): which of them sends a parameter.
CHAT_API, RESPONSES_API = "chat", "responses"
APIS = (CHAT_API, RESPONSES_API)

# Keys the extra body may not carry: they have their own controls or are the request.
RESERVED = {"model", "messages", "prompt", "stream", "stream_options"}


@dataclass(frozen=True, slots=True)
class Param:
    name: str  # the key in lane.params
    kind: str  # float | int | bool | str | stops | logit_bias | choice | json_schema | json
    label: str
    default: Any = None  # what the API does when the field is absent (shown, never sent)
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    modes: tuple[str, ...] = BOTH
    help: str = ""
    field: str = ""  # the body field, when it differs from name
    choices: tuple[str, ...] = ()
    group: str = "sampling"
    short: str = ""  # the lane head's chip, when shorter than the label
    # The wire APIs that send it (a chat lane's; completion mode has one), and its place
    # in a Responses body when that differs from ``wire`` ("a.b": the key b of object a).
    apis: tuple[str, ...] = APIS
    responses_field: str = ""

    @property
    def chip(self) -> str:
        return self.short or self.label

    @property
    def wire(self) -> str:
        return self.field or self.name

    @property
    def slider(self) -> bool:
        return self.kind == "float" and self.minimum is not None and self.maximum is not None


PARAMS: tuple[Param, ...] = (
    Param("temperature", "float", "Temperature", 1.0, 0, 2, 0.01,
          help="Higher values make the output more random, lower more deterministic.",
          short="temp"),
    Param("top_p", "float", "Top P", 1.0, 0, 1, 0.01,
          help="Nucleus sampling: only the tokens within this probability mass.", short="top_p"),
    Param("max_tokens", "int", "Max tokens", None, 1, 10_000_000, 1, modes=CHAT,
          help="Upper bound on generated tokens (sent as max_tokens or "
               "max_completion_tokens, as the endpoint wants; max_output_tokens on the "
               "Responses API).", short="max", responses_field="max_output_tokens"),
    Param("completion_max_tokens", "int", "Max tokens", 16, 1, 10_000_000, 1, modes=COMPLETION,
          field="max_tokens", help="Upper bound on generated tokens (the API's default is 16).",
          short="max"),
    Param("presence_penalty", "float", "Presence penalty", 0.0, -2, 2, 0.01,
          help="Positive values favour tokens not yet used: new topics.", short="presence",
          apis=(CHAT_API,)),
    Param("frequency_penalty", "float", "Frequency penalty", 0.0, -2, 2, 0.01,
          help="Positive values penalise tokens by how often they appeared: less repetition.",
          short="frequency", apis=(CHAT_API,)),
    Param("n", "int", "Choices (n)", 1, 1, 8, 1, help="How many answers to generate at once.",
          short="n", apis=(CHAT_API,)),
    Param("stop", "stops", "Stop sequences", None, group="output",
          help="Up to 4 sequences, one per line; generation stops before them.", short="stop",
          apis=(CHAT_API,)),
    Param("seed", "int", "Seed", None, -(2**63), 2**63 - 1, 1, group="output",
          help="Best-effort determinism where the endpoint supports it.", short="seed",
          apis=(CHAT_API,)),
    Param("logit_bias", "logit_bias", "Logit bias", None, group="output",
          help='JSON object of token id → bias from -100 to 100, e.g. {"50256": -100}.',
          apis=(CHAT_API,)),
    Param("response_format", "choice", "Response format", "text", modes=CHAT, group="output",
          choices=("text", "json_object", "json_schema"),
          help="json_object asks for valid JSON; json_schema for JSON matching a schema.",
          short="format"),
    Param("json_schema", "json_schema", "JSON schema", None, modes=CHAT, group="output",
          help='For json_schema: {"name": ..., "schema": {...}, "strict": true}, or a bare '
               "schema."),
    Param("logprobs", "bool", "Log probabilities", False, modes=CHAT, group="output",
          help="Return the probability of each token.", short="logprobs"),
    Param("top_logprobs", "int", "Top logprobs", None, 0, 20, 1, modes=CHAT, group="output",
          help="How many alternatives per token (needs log probabilities)."),
    Param("completion_logprobs", "int", "Logprobs", None, 0, 5, 1, modes=COMPLETION,
          field="logprobs", group="output", help="Alternatives per token, 0-5."),
    Param("suffix", "str", "Suffix", None, modes=COMPLETION, group="output",
          help="Text that comes after the completion (insert mode)."),
    Param("echo", "bool", "Echo prompt", False, modes=COMPLETION, group="output",
          help="Return the prompt in front of the completion."),
    Param("parallel_tool_calls", "bool", "Parallel tool calls", True, modes=CHAT, group="output",
          help="Let the model call several tools in one answer (needs tools)."),
    Param("reasoning_effort", "choice", "Reasoning effort", None, modes=CHAT, group="output",
          choices=("none", "minimal", "low", "medium", "high", "xhigh"), short="effort",
          responses_field="reasoning.effort",
          help="How long a reasoning model thinks before answering."),
    Param("reasoning_summary", "choice", "Reasoning summary", None, modes=CHAT,
          group="output", choices=("auto", "concise", "detailed"), apis=(RESPONSES_API,),
          responses_field="reasoning.summary", short="summary",
          help="Ask for a summary of the model's reasoning (Responses API)."),
    Param("encrypted_reasoning", "bool", "Keep encrypted reasoning", False, modes=CHAT,
          group="output", apis=(RESPONSES_API,), short="encrypted",
          help="include: reasoning.encrypted_content, so each turn sends the reasoning "
               "back without the server storing it (Responses API)."),
    Param("conversation_state", "choice", "Conversation state", "stateless", modes=CHAT,
          group="output", choices=("stateless", "chained", "chained_or_whole"),
          apis=(RESPONSES_API,), short="state",
          help="stateless: the whole conversation as input each turn. chained: only what is "
               "new, with previous_response_id (the server must have stored the last "
               "response). chained_or_whole: chained, and the whole conversation when the "
               "server refuses (Responses API)."),
    Param("store", "bool", "Store", None, modes=CHAT, group="output", apis=(RESPONSES_API,),
          help="Whether the server keeps the response (Responses API; the API's default "
               "is true)."),
    Param("truncation", "choice", "Truncation", "disabled", modes=CHAT, group="output",
          choices=("auto", "disabled"), apis=(RESPONSES_API,),
          help="auto lets the server drop the oldest input when the context is full "
               "(Responses API)."),
    Param("user", "str", "User", None, group="output",
          help="An end-user id passed to the endpoint."),
    Param("safety_identifier", "str", "Safety identifier", None, modes=CHAT, group="output",
          help="A stable (hashed) id of the end user, which OpenAI uses to detect abuse in "
               "place of user."),
    Param("metadata", "metadata", "Metadata", None, modes=CHAT, group="output",
          help='Up to 16 text values kept with the response, e.g. {"run": "a1"} (the '
               "endpoint keeps them when it stores the response)."),
    Param("extra_body", "json", "Extra body", None, group="output",
          help="A JSON object merged into the request for anything else the endpoint "
               'accepts, e.g. {"top_k": 40, "repetition_penalty": 1.1}.'),
)  # fmt: skip

BY_NAME = {p.name: p for p in PARAMS}


class ParamError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def params_for(mode: str, api: str = CHAT_API) -> list[Param]:
    """The parameters a lane in ``mode`` sends on ``api`` (completion mode has one API)."""
    return [p for p in PARAMS if mode in p.modes and (mode != "chat" or api in p.apis)]


def _json(param: Param, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ParamError(param.name, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _number(param: Param, raw: Any) -> float | int:
    if isinstance(raw, bool):
        raise ParamError(
            param.name, f"must be a number{'' if param.kind == 'float' else ' (whole)'}"
        )
    try:
        if param.kind == "float":
            value: float | int = float(raw)
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        else:
            value = int(str(raw).strip())
    except (TypeError, ValueError):
        kind = "a number" if param.kind == "float" else "a whole number"
        raise ParamError(param.name, f"must be {kind}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ParamError(param.name, "must be a finite number")
    if param.minimum is not None and value < param.minimum:
        raise ParamError(param.name, f"must be at least {param.minimum:g}")
    if param.maximum is not None and value > param.maximum:
        raise ParamError(param.name, f"must be at most {param.maximum:g}")
    return value


def _json_object(param: Param, raw: Any, message: str = "must be a JSON object") -> dict:
    value = _json(param, raw)
    if not isinstance(value, dict):
        raise ParamError(param.name, message)
    return value


def _bool(param: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "on", "1", "yes"):
        return True
    if text in ("false", "off", "0", "no"):
        return False
    raise ParamError(param.name, "must be true or false")


def _str(param: Param, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ParamError(param.name, "must be text")
    return raw


def _stops(param: Param, raw: Any) -> list[str] | None:
    items = raw.split("\n") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise ParamError(param.name, "must be a list of strings")
    # Escapes let a stop sequence be a newline or a tab, which a line can't hold.
    items = [s.replace("\\n", "\n").replace("\\t", "\t") for s in items if s != ""]
    if len(items) > 4:
        raise ParamError(param.name, "at most 4 sequences")
    return items or None


def _choice(param: Param, raw: Any) -> Any:
    if raw not in param.choices:
        raise ParamError(param.name, f"must be one of {', '.join(param.choices)}")
    return raw


def _logit_bias(param: Param, raw: Any) -> dict[str, Any] | None:
    value = _json_object(param, raw, "must be a JSON object of token id → bias")
    cleaned = {}
    for token, bias in value.items():
        if not str(token).strip().lstrip("-").isdigit() or int(token) < 0:
            raise ParamError(param.name, f"token id {token!r} is not a whole number ≥ 0")
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise ParamError(param.name, f"bias for {token} must be a number from -100 to 100")
        cleaned[str(int(token))] = bias
    return cleaned or None


def _json_schema(param: Param, raw: Any) -> dict[str, Any]:
    value = _json_object(param, raw)
    wrapper = value if "schema" in value else {"name": "response", "schema": value}
    schema = wrapper.get("schema")
    if not isinstance(schema, dict):
        raise ParamError(param.name, '"schema" must be a JSON object')
    try:
        check_depth(schema, '"schema"')
    except SchemaTooDeep as exc:
        raise ParamError(param.name, str(exc)) from None
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise ParamError(param.name, f"not a valid JSON Schema at {where}: {exc.message}") from None
    name = wrapper.get("name", "response")
    if not isinstance(name, str) or not name:
        raise ParamError(param.name, '"name" must be a non-empty string')
    return {k: wrapper[k] for k in ("name", "description", "schema", "strict") if k in wrapper}


def _metadata(param: Param, raw: Any) -> dict[str, str] | None:
    """OpenAI's metadata: at most 16 pairs, keys up to 64 characters, text values up to
    512."""
    value = _json_object(param, raw)
    if len(value) > 16:
        raise ParamError(param.name, "at most 16 keys")
    for key, text in value.items():
        if len(key) > 64:
            raise ParamError(param.name, f"key {key[:20]!r}… is longer than 64 characters")
        if not isinstance(text, str) or len(text) > 512:
            raise ParamError(param.name, f"{key}: values are text of at most 512 characters")
    return value or None


def _extra_json(param: Param, raw: Any) -> dict[str, Any] | None:
    value = _json_object(param, raw)
    clash = sorted(RESERVED & value.keys())
    if clash:
        raise ParamError(param.name, f"cannot set {', '.join(clash)} (part of the request)")
    # A Responses-only parameter's name stays free for a chat lane's extra body.
    wires = {p.wire for p in PARAMS if CHAT_API in p.apis}
    own = sorted(k for k in value if k in wires and k != "extra_body")
    if own:
        raise ParamError(param.name, f"{', '.join(own)} has its own control in the panel")
    return value or None


# How each kind of parameter is coerced and checked (raw is never None, "" or []).
_CLEANERS: dict[str, Callable[[Param, Any], Any]] = {
    "float": _number,
    "int": _number,
    "bool": _bool,
    "str": _str,
    "stops": _stops,
    "choice": _choice,
    "logit_bias": _logit_bias,
    "json_schema": _json_schema,
    "json": _extra_json,
    "metadata": _metadata,
}


def clean_value(param: Param, raw: Any) -> Any:
    """Coerce and check one value; None means "not set"."""
    if raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []:
        return None
    cleaner = _CLEANERS.get(param.kind)
    if cleaner is None:  # pragma: no cover - table bug
        raise ParamError(param.name, f"unknown kind {param.kind}")
    return cleaner(param, raw)


def _lift_extra(raw: dict[str, Any]) -> dict[str, Any]:
    """Saved values (an import, a setup, a preset, a branch) whose extra body carries a
    parameter that has a control of its own now (``reasoning_effort`` before it got one):
    the value moves to that control, when valid, rather than the whole refusing."""
    extra = raw.get("extra_body")
    if not isinstance(extra, dict):
        return raw  # the panel's text: a clash is said there
    lifted = {}
    for key, value in extra.items():
        param = BY_NAME.get(key)
        if param is None or param.wire != key or key in raw or param.kind == "json":
            continue
        try:
            lifted[key] = clean_value(param, value)
        except ParamError:
            continue
    if not lifted:
        return raw
    rest = {k: v for k, v in extra.items() if k not in lifted}
    return {**raw, **lifted, "extra_body": rest or None}


def check_params(
    raw: dict[str, Any], *, mode: str = "chat"
) -> tuple[dict[str, Any], dict[str, ParamError]]:
    raw = _lift_extra(raw)
    cleaned: dict[str, Any] = {}
    errors: dict[str, ParamError] = {}
    for name, value in raw.items():
        param = BY_NAME.get(name)
        if param is None:
            errors[name] = ParamError(name, "unknown parameter")
            continue
        if mode not in param.modes:
            continue
        try:
            value = clean_value(param, value)
        except ParamError as exc:
            errors[name] = exc
            continue
        if value is not None:
            cleaned[name] = value
    if cleaned.get("response_format") == "json_schema" and "json_schema" not in cleaned:
        errors.setdefault("json_schema", ParamError("json_schema", "json_schema needs a schema"))
    if "top_logprobs" in cleaned and not cleaned.get("logprobs"):
        errors.setdefault(
            "top_logprobs", ParamError("top_logprobs", "needs Log probabilities switched on")
        )
    return cleaned, errors


def request_params(values: dict[str, Any], *, mode: str, quirks: dict[str, Any]) -> dict[str, Any]:
    """The body fields for the values a lane has set, honouring the endpoint's quirks."""
    body: dict[str, Any] = {}
    dropped = set(quirk(quirks, "drop_params"))
    for param in PARAMS:
        if mode not in param.modes:
            continue
        value = values.get(param.name)
        if value is None or param.wire in dropped:
            continue
        if param.name == "max_tokens":
            body[quirk(quirks, "max_tokens_field")] = value
        elif param.name == "response_format":
            if value == "json_schema":
                if "json_schema" in values:
                    body["response_format"] = {
                        "type": "json_schema",
                        "json_schema": values["json_schema"],
                    }
            else:
                body["response_format"] = {"type": value}
        elif param.name == "json_schema":
            continue  # carried by response_format
        elif param.apis == (RESPONSES_API,):
            continue
        elif param.name == "extra_body":
            body.update({k: v for k, v in value.items() if k not in dropped})
        else:
            body[param.wire] = value
    return body


# Not sent from the extra body of a Responses request: the request itself.
RESPONSES_RESERVED = {"model", "input", "instructions", "stream"}


def _merge_extra(body: dict[str, Any], extra: dict[str, Any]) -> None:
    """The extra body on a Responses body: an object the panel also fills (``text``,
    ``reasoning``) is merged key by key, ``include`` is added to; the rest replaces."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        elif key == "include" and isinstance(value, list) and isinstance(body.get(key), list):
            body[key] = [*body[key], *(v for v in value if v not in body[key])]
        else:
            body[key] = value


def responses_params(values: dict[str, Any], *, quirks: dict[str, Any]) -> dict[str, Any]:
    """The Responses API body fields for the values a chat lane has set: the same table,
    each parameter where this API wants it; those it lacks (``apis``) are not sent."""
    body: dict[str, Any] = {}
    dropped = set(quirk(quirks, "drop_params"))
    for param in params_for("chat", RESPONSES_API):
        value = values.get(param.name)
        if value is None or param.wire in dropped or param.name in dropped:
            continue
        if param.name == "response_format":
            if value == "json_schema":
                if "json_schema" in values:
                    body.setdefault("text", {})["format"] = {
                        "type": "json_schema",
                        **values["json_schema"],
                    }
            else:
                body.setdefault("text", {})["format"] = {"type": value}
        elif param.name in ("json_schema", "conversation_state"):
            continue  # carried by response_format; how the input is built
        elif param.name == "logprobs":
            if value:
                body.setdefault("include", []).append("message.output_text.logprobs")
        elif param.name == "encrypted_reasoning":
            if value:
                body.setdefault("include", []).append("reasoning.encrypted_content")
        elif param.name == "extra_body":
            extra = {k: v for k, v in value.items() if k not in dropped | RESPONSES_RESERVED}
            _merge_extra(body, extra)
        elif "." in (param.responses_field or ""):
            outer, inner = param.responses_field.split(".", 1)
            body.setdefault(outer, {})[inner] = value
        else:
            body[param.responses_field or param.wire] = value
    return body
