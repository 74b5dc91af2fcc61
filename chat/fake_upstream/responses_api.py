"""``POST /v1/responses``: the Responses API, answered by the same planner as chat.

A request is turned into the chat request it means (as llama.cpp's server does), planned
by ``plan_answer`` (so every ``@fake`` directive works here too), and written back as a
Responses object or as its typed event stream. ``previous_response_id`` is served from an
in-memory store of the responses asked with ``store`` (the default, as on OpenAI).

The personalities imitate the known deviations (``FakeConfig``): no ``sequence_number``
or ``output_index`` on events (llama.cpp), stateless servers that refuse
``previous_response_id`` (Ollama, OpenRouter), servers that accept ``store`` but keep
nothing (vLLM unless configured), and servers without the route at all.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .config import FakeConfig
from .errors import _Fail
from .plan import _add_reasoning, _Choice, _Plan, plan_answer
from .responses import Step, _json_reply, _Reply, stream_headers
from .tools import _pieces

MAX_STORED = 200  # responses kept for previous_response_id (oldest dropped first)
THINKING = "The user asks something; a short answer will do."


class ResponseStore:
    """Stored responses: id -> (the input items it was asked with, its output items)."""

    def __init__(self) -> None:
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def put(self, response: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
        self.items[response["id"]] = {"response": response, "inputs": inputs}
        while len(self.items) > MAX_STORED:
            self.items.popitem(last=False)

    def get(self, response_id: str) -> dict[str, Any] | None:
        return self.items.get(response_id)


# --------------------------------------------------------------------------- requests


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(i, dict) for i in value):
        return list(value)
    raise _Fail(400, "'input' must be a string or an array of input items.", param="input")


def _parts(content: Any, where: str) -> list[dict[str, Any]] | str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _Fail(400, f"Invalid '{where}.content': expected a string or a list.", param=where)
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        else:
            raise _Fail(400, f"Invalid content part type {kind!r} in '{where}'.", param=where)
    return parts


def _messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as chat messages (function calls join the assistant message before)."""
    messages: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        kind = item.get("type", "message")
        where = f"input[{n}]"
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _Fail(400, f"Invalid value for '{where}.role': {role!r}.", param=where)
            messages.append({"role": role, "content": _parts(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not item.get("call_id"):
                raise _Fail(400, f"Missing required parameter: '{where}.call_id'.", param=where)
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        elif kind == "reasoning":
            continue  # kept by the caller's history; nothing a chat model reads
        else:
            raise _Fail(400, f"Invalid value for '{where}.type': {kind!r}.", param=where)
    return messages


def _chat_tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        if "function" in tool:
            raise _Fail(
                400,
                "Missing required parameter: 'tools[0].name'. (Responses tools are flat: "
                "name, description and parameters beside type.)",
                param="tools",
            )
        fn = {k: v for k, v in tool.items() if k != "type"}
        out.append({"type": "function", "function": fn})
    return out


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _chat_body(
    cfg: FakeConfig, body: dict[str, Any], history: list[dict[str, Any]]
) -> dict[str, Any]:
    """The chat completions request a Responses request means."""
    if "messages" in body:
        raise _Fail(400, "Unknown parameter: 'messages'. (Use 'input'.)", param="messages")
    items = history + _input_items(body)
    messages = _messages(items)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise _Fail(400, "'input' must not be empty.", param="input")
    chat: dict[str, Any] = {"messages": messages, "stream": bool(body.get("stream"))}
    if "model" in body:
        chat["model"] = body["model"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if name in body:
            chat[name] = body[name]
    if "max_output_tokens" in body:
        field = (
            "max_tokens"
            if cfg.max_tokens_field != "max_completion_tokens"
            else ("max_completion_tokens")
        )
        chat[field] = body["max_output_tokens"]
    if "tools" in body:
        chat["tools"] = _chat_tools(body["tools"])
    if "tool_choice" in body:
        chat["tool_choice"] = _chat_tool_choice(body["tool_choice"])
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt.get("name"), "schema": fmt.get("schema")},
        }
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if isinstance(body.get("top_logprobs"), int):
        chat["logprobs"] = True
        chat["top_logprobs"] = body["top_logprobs"]
    elif "message.output_text.logprobs" in (body.get("include") or []):
        chat["logprobs"] = True
    return chat


def _history(cfg: FakeConfig, store: ResponseStore, body: dict[str, Any]) -> list[dict[str, Any]]:
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    if cfg.responses_state == "stateless":
        raise _Fail(
            400,
            "previous_response_id is not supported: this server is stateless; send the "
            "whole conversation in 'input'.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    found = store.get(previous) if isinstance(previous, str) else None
    if found is None:
        raise _Fail(
            404,
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return [*found["inputs"], *found["response"]["output"]]


# --------------------------------------------------------------------------- answers


class _Answer:
    """One planned answer in the Responses shape (choice 0: Responses has no ``n``)."""

    def __init__(self, plan: _Plan, body: dict[str, Any], cfg: FakeConfig) -> None:
        self.plan = plan
        self.body = body
        self.cfg = cfg
        self.choice: _Choice = plan.choices[0]
        self.id = f"resp_{plan.id}"
        self.created = int(time.time())
        include = body.get("include") if isinstance(body.get("include"), list) else []
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        self.summary = bool(reasoning.get("summary"))
        self.encrypted = "reasoning.encrypted_content" in include
        self.reasoning_id = f"rs_{plan.id}"
        self.message_id = f"msg_{plan.id}"

    # The pieces of the answer, as planned.
    def reasoning_pieces(self) -> list[str]:
        field = self.plan.directives.reasoning_field
        return [d[field] for d in self.choice.deltas[: self.choice.reasoning]]

    def text_pieces(self) -> list[str]:
        if self.choice.tool_calls:
            return []
        return [d.get("content", "") for d in self.choice.deltas[self.choice.reasoning :]]

    def calls(self) -> list[dict[str, Any]]:
        out = []
        for k, call in enumerate(self.choice.tool_calls or []):
            args = call.get("arguments", {})
            out.append(
                {
                    "id": f"fc_{self.plan.id}_{k}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": f"call_{self.plan.id}_{k}",
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                }
            )
        return out

    def logprobs(self, piece: int) -> list[dict[str, Any]]:
        entries = self.choice.logprobs
        if not entries or piece >= len(entries):
            return []
        entry = entries[piece]
        top = [
            {"token": t["token"], "logprob": t["logprob"]} for t in entry.get("top_logprobs", [])
        ]
        return [{"token": entry["token"], "logprob": entry["logprob"], "top_logprobs": top}]

    def reasoning_item(self, text: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
        if self.summary:
            item["summary"] = [{"type": "summary_text", "text": text}]
        else:
            item["content"] = [{"type": "reasoning_text", "text": text}]
        if self.encrypted:
            item["encrypted_content"] = "enc_" + uuid.uuid5(uuid.NAMESPACE_URL, text).hex
        return item

    def message_item(self, text: str) -> dict[str, Any]:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return {
            "id": self.message_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }

    def output(self) -> list[dict[str, Any]]:
        out = []
        if self.choice.reasoning:
            out.append(self.reasoning_item("".join(self.reasoning_pieces())))
        text = "".join(self.text_pieces())
        if not self.choice.tool_calls:
            out.append(self.message_item(text))
        out.extend(self.calls())
        return out

    def usage(self) -> dict[str, Any]:
        chat = self.plan.usage
        usage = {
            "input_tokens": chat["prompt_tokens"],
            "input_tokens_details": {
                "cached_tokens": (chat.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
            },
            "output_tokens": chat["completion_tokens"],
            "output_tokens_details": {
                "reasoning_tokens": (chat.get("completion_tokens_details") or {}).get(
                    "reasoning_tokens", 0
                )
            },
            "total_tokens": chat["total_tokens"],
        }
        return usage

    def response(self, status: str, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body = self.body
        done = status in ("completed", "incomplete")
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.plan.model,
            "output": output if output is not None else [],
            "instructions": body.get("instructions"),
            "previous_response_id": body.get("previous_response_id"),
            "store": self.stored,
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "max_output_tokens": body.get("max_output_tokens"),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "text": body.get("text") or {"format": {"type": "text"}},
            "metadata": body.get("metadata") or {},
            "error": None,
            "incomplete_details": None,
            "usage": None,
        }
        if done:
            obj["usage"] = self.usage() if self.plan.directives.usage else None
        if status == "incomplete":
            obj["incomplete_details"] = {"reason": "max_output_tokens"}
        return obj

    @property
    def stored(self) -> bool:
        return self.body.get("store", True) is not False and self.cfg.responses_state == "store"

    @property
    def status(self) -> str:
        return "incomplete" if self.choice.finish_reason == "length" else "completed"


def _event(kind: str, data: dict[str, Any], seq: list[int], cfg: FakeConfig) -> bytes:
    obj: dict[str, Any] = {"type": kind}
    if cfg.responses_sequence:
        obj["sequence_number"] = seq[0]
        seq[0] += 1
    else:
        data = {k: v for k, v in data.items() if k not in ("output_index", "content_index")}
    obj.update(data)
    payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return f"event: {kind}\ndata: {payload}\n\n".encode()


def _steps(answer: _Answer, after: Any) -> Iterator[Step]:
    """The typed events, timed as the chat stream of the same plan would be."""
    plan, d, cfg = answer.plan, answer.plan.directives, answer.cfg
    seq = [0]

    def ev(kind: str, **data: Any) -> bytes:
        return _event(kind, data, seq, cfg)

    last = [0.0]

    def at(t: float, data: bytes, token: bool = False) -> Iterator[Step]:
        if d.keepalive:
            yield (last[0] + t) / 2, b": keep-alive\n\n", False
        last[0] = t
        yield t, data, token

    yield from at(0.0, ev("response.created", response=answer.response("in_progress")))
    yield from at(0.0, ev("response.in_progress", response=answer.response("in_progress")))
    t = plan.ttft
    emitted = 0
    index = 0
    output: list[dict[str, Any]] = []

    def broken() -> Iterator[Step] | None:
        if d.error_after is not None and emitted >= d.error_after:
            message = d.message or "The server had an error while processing your request."
            return at(t, ev("error", code="server_error", message=message, param=None))
        if d.cut_after is not None and emitted >= d.cut_after:
            return iter(())
        return None

    reasoning = answer.reasoning_pieces()
    if reasoning:
        item = answer.reasoning_item("")
        yield from at(t, ev("response.output_item.added", output_index=index, item=item))
        kind = "reasoning_summary_text" if answer.summary else "reasoning_text"
        for piece in reasoning:
            if (stop := broken()) is not None:
                yield from stop
                return
            yield from at(
                t,
                ev(f"response.{kind}.delta", item_id=answer.reasoning_id, output_index=index,
                   **({"summary_index": 0} if answer.summary else {"content_index": 0}),
                   delta=piece),
                True,
            )  # fmt: skip
            emitted += 1
            t += plan.step
        done = answer.reasoning_item("".join(reasoning))
        yield from at(t, ev("response.output_item.done", output_index=index, item=done))
        output.append(done)
        index += 1
    pieces = answer.text_pieces()
    if not answer.choice.tool_calls:
        empty = answer.message_item("")
        empty["status"], empty["content"] = "in_progress", []
        ids = {"item_id": answer.message_id, "output_index": index}
        yield from at(t, ev("response.output_item.added", output_index=index, item=empty))
        part = {"type": "output_text", "text": "", "annotations": []}
        yield from at(t, ev("response.content_part.added", **ids, content_index=0, part=part))
        for n, piece in enumerate(pieces):
            if (stop := broken()) is not None:
                yield from stop
                return
            lp = answer.logprobs(n)
            yield from at(
                t,
                ev("response.output_text.delta", **ids, content_index=0, delta=piece, logprobs=lp),
                True,
            )
            emitted += 1
            t += plan.step
        text = "".join(pieces)
        yield from at(t, ev("response.output_text.done", **ids, content_index=0, text=text))
        part = {"type": "output_text", "text": text, "annotations": []}
        yield from at(t, ev("response.content_part.done", **ids, content_index=0, part=part))
        item = answer.message_item(text)
        yield from at(t, ev("response.output_item.done", output_index=index, item=item))
        output.append(item)
        index += 1
    for call in answer.calls():
        added = {**call, "status": "in_progress", "arguments": ""}
        ids = {"item_id": call["id"], "output_index": index}
        yield from at(t, ev("response.output_item.added", output_index=index, item=added))
        for piece in _pieces(call["arguments"]):
            if (stop := broken()) is not None:
                yield from stop
                return
            yield from at(t, ev("response.function_call_arguments.delta", **ids, delta=piece), True)
            emitted += 1
            t += plan.step
        yield from at(
            t, ev("response.function_call_arguments.done", **ids, arguments=call["arguments"])
        )
        yield from at(t, ev("response.output_item.done", output_index=index, item=call))
        output.append(call)
        index += 1
    final = answer.response(answer.status, output)
    after(final)
    yield from at(t, ev(f"response.{answer.status}", response=final))


def responses_reply(
    cfg: FakeConfig, store: ResponseStore, body: Any, headers: dict[str, str]
) -> _Reply:
    """The reply to ``POST /v1/responses`` (or a ``_Fail``)."""
    if not cfg.responses:
        raise _Fail(404, "Invalid URL (POST /v1/responses)")
    if not isinstance(body, dict):
        raise _Fail(400, "The request body must be a JSON object.")
    history = _history(cfg, store, body)
    chat = _chat_body(cfg, body, history)
    plan = plan_answer(cfg, "chat", chat, headers)
    reasoning = body.get("reasoning")
    asked = isinstance(reasoning, dict) and (reasoning.get("effort") or reasoning.get("summary"))
    if asked and not plan.choices[0].reasoning:
        # A reasoning model: it thinks first (unless the prompt scripted its reasoning).
        plan.directives.reasoning = THINKING
        _add_reasoning(plan.choices[0], plan.directives)
    answer = _Answer(plan, body, cfg)
    inputs = history + _input_items(body)

    def keep(final: dict[str, Any]) -> None:
        if answer.stored:
            store.put(final, inputs)

    if plan.stream:
        d = plan.directives
        hold = d.hold_after if d.gate is not None else None
        return _Reply(
            200, stream_headers(), stream=_steps(answer, keep), hold_after=hold, gate=d.gate
        )
    if plan.directives.error_after is not None:
        raise _Fail(500, plan.directives.message or "The server had an error.")
    final = answer.response(answer.status, answer.output())
    keep(final)
    reply = _json_reply(200, final)
    reply.delay = plan.ttft + plan.step * len(answer.choice.deltas)
    return reply


def stored_reply(cfg: FakeConfig, store: ResponseStore, response_id: str) -> _Reply:
    """``GET /v1/responses/{id}``."""
    found = store.get(response_id) if cfg.responses else None
    if found is None:
        raise _Fail(404, f"Response with id '{response_id}' not found.", code="not_found")
    return _json_reply(200, found["response"])
