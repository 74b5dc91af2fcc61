"""The Responses API's typed events (``POST /v1/responses``) to the same events as chat.

One ``ResponsesEvents`` per stream keeps what the events share: which item a tool call
is, how much of each text arrived as deltas. It is tolerant, as the servers differ:
``sequence_number`` and ``output_index`` may be missing (llama.cpp), items may come only
whole (``output_item.done`` without deltas), be repeated, or come out of order; an
unknown event type is ignored (the raw stream keeps it for the inspector). No ``[DONE]``
is needed: ``response.completed``, ``response.incomplete``, ``response.failed`` and
``error`` end the stream.
"""

from __future__ import annotations

from typing import Any

from .errors import _str_or_none
from .events import (
    Event,
    Finish,
    Logprobs,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
    Usage,
)
from .logprobs import _chat_logprob_tokens
from .parse import sse_object
from .usage import _int_or_none

RESPONSES_PATH = "responses"  # the API path, as runs and code export name it
ENDS = {"response.completed", "response.incomplete", "response.failed", "error"}


def usage_event(raw: Any) -> Usage | None:
    """A Responses ``usage`` as the chat-shaped Usage the rest of the app reads."""
    if not isinstance(raw, dict):
        return None
    prompt = _int_or_none(raw.get("input_tokens"))
    completion = _int_or_none(raw.get("output_tokens"))
    total = _int_or_none(raw.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    chat: dict[str, Any] = dict(raw)
    chat.update(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)
    out_details = raw.get("output_tokens_details")
    if isinstance(out_details, dict) and isinstance(out_details.get("reasoning_tokens"), int):
        chat["completion_tokens_details"] = {"reasoning_tokens": out_details["reasoning_tokens"]}
    in_details = raw.get("input_tokens_details")
    if isinstance(in_details, dict) and isinstance(in_details.get("cached_tokens"), int):
        chat["prompt_tokens_details"] = {"cached_tokens": in_details["cached_tokens"]}
    return Usage(prompt, completion, total, chat)


def _logprobs(raw: Any) -> list[dict[str, Any]]:
    """An output_text delta's ``logprobs``: the same entries as chat's, read the same way
    (finite numbers, a token from its bytes when needed)."""
    return _chat_logprob_tokens(raw) if isinstance(raw, list) else []


def _error(obj: dict[str, Any], fallback: str) -> UpstreamError:
    err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    message = _str_or_none(err.get("message")) or fallback
    return UpstreamError(
        message=message,
        type=_str_or_none(err.get("type")),
        code=_str_or_none(err.get("code")),
        param=_str_or_none(err.get("param")),
    )


class ResponsesEvents:
    """The state of one Responses stream (or whole response) being read."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}  # an item's key -> its tool call index
        self.args: dict[int, str] = {}  # the arguments each call got so far
        self.texts: dict[str, str] = {}  # text (or reasoning) per item/part, from deltas
        self.response_id: str | None = None
        self.output: dict[str, dict[str, Any]] = {}  # finished items by key, in order
        self.streamed = False  # any text or reasoning came as deltas
        self.named: set[int] = set()  # calls whose id and name were sent

    # --- keys --------------------------------------------------------------------------
    @staticmethod
    def _key(obj: dict[str, Any], item: dict[str, Any] | None = None) -> str:
        """An item's identity: its id, else its output_index, else "last"."""
        if item is not None and isinstance(item.get("id"), str) and item["id"]:
            return item["id"]
        if isinstance(obj.get("item_id"), str) and obj["item_id"]:
            return obj["item_id"]
        index = obj.get("output_index")
        if isinstance(index, int) and not isinstance(index, bool):
            return f"#{index}"
        return "last"

    def _call(self, key: str, item: dict[str, Any] | None = None) -> tuple[int, bool]:
        """The tool call index of item ``key`` (and whether it is new)."""
        if key in self.calls:
            return self.calls[key], False
        if key == "last" and self.calls:
            return list(self.calls.values())[-1], False
        if item is not None and isinstance(item.get("call_id"), str):
            # The same call seen under another key (an id after an index, or the reverse).
            for known, index in self.calls.items():
                if known == f"call:{item['call_id']}":
                    self.calls[key] = index
                    return index, False
        index = len({*self.calls.values()})
        self.calls[key] = index
        if item is not None and isinstance(item.get("call_id"), str):
            self.calls[f"call:{item['call_id']}"] = index
        return index, True

    # --- the events --------------------------------------------------------------------
    def chunk(self, data: str, event_name: str = "") -> tuple[list[Event], bool]:
        """Events for one SSE ``data`` payload, and whether the stream is over."""
        obj = sse_object(data, "event")
        if not isinstance(obj, dict):
            return (obj or [], obj is not None)
        kind = obj.get("type") if isinstance(obj.get("type"), str) else event_name
        if kind == "error" or (kind not in ENDS and isinstance(obj.get("error"), dict)):
            return [_error(obj, "The endpoint reported an error mid-stream")], True
        events = self._events(kind, obj)
        return events, kind in ENDS

    def _events(self, kind: str, obj: dict[str, Any]) -> list[Event]:
        if kind in ("response.created", "response.in_progress", "response.queued"):
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_id = response["id"]
            return []
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            return self._text(obj, TextDelta)
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._text(obj, ReasoningDelta)
        if kind in ("response.output_text.done", "response.refusal.done"):
            return self._rest(obj, "refusal" if "refusal" in kind else "text", TextDelta)
        if kind in ("response.reasoning_summary_text.done", "response.reasoning_text.done"):
            return self._rest(obj, "text", ReasoningDelta)
        if kind == "response.output_item.added":
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                return self._call_item(obj, item, whole=False)
            return []
        if kind == "response.function_call_arguments.delta":
            index, new = self._call(self._key(obj))
            delta = obj.get("delta") if isinstance(obj.get("delta"), str) else ""
            self.args[index] = self.args.get(index, "") + delta
            return [ToolCallDelta(index=index, arguments=delta)] if delta or new else []
        if kind == "response.function_call_arguments.done":
            index, _ = self._call(self._key(obj))
            return self._args_rest(index, obj.get("arguments"))
        if kind == "response.output_item.done":
            item = obj.get("item")
            if not isinstance(item, dict):
                return []
            self.output[self._key(obj, item)] = item
            if item.get("type") == "function_call":
                return self._call_item(obj, item, whole=True)
            return self._item_rest(obj, item)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            return self._end(kind, obj.get("response"))
        return []  # another event type: kept in the raw stream only

    def _part_key(self, obj: dict[str, Any], field: str) -> str:
        index = obj.get("summary_index", obj.get("content_index", 0))
        return f"{self._key(obj)}/{field}/{index}"

    def _text(
        self, obj: dict[str, Any], kind: type[TextDelta] | type[ReasoningDelta]
    ) -> list[Event]:
        delta = obj.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        field = "text" if kind is TextDelta else "reasoning"
        key = self._part_key(obj, field)
        shown = delta
        if key not in self.texts and any(k.split("/")[-2] == field for k in self.texts):
            shown = "\n\n" + delta  # another part (a summary's next part): a new paragraph
        self.texts[key] = self.texts.get(key, "") + delta
        self.streamed = True
        events: list[Event] = [kind(shown)]
        if kind is TextDelta:
            tokens = _logprobs(obj.get("logprobs"))
            if tokens:
                events.append(Logprobs(0, tokens))
        return events

    def _rest(
        self, obj: dict[str, Any], name: str, kind: type[TextDelta] | type[ReasoningDelta]
    ) -> list[Event]:
        """A ``.done`` event's whole text: what the deltas did not bring (all of it when
        the server sent none), nothing when they brought it all or something else."""
        text = obj.get(name)
        if not isinstance(text, str):
            return []
        field = "text" if kind is TextDelta else "reasoning"
        key = self._part_key(obj, field)
        seen = self.texts.get(key, "")
        if not text.startswith(seen) or len(text) == len(seen):
            return []
        self.texts[key] = text
        return [kind(text[len(seen) :])]

    def _item_rest(self, obj: dict[str, Any], item: dict[str, Any]) -> list[Event]:
        """A finished message or reasoning item whose text came without deltas."""
        events: list[Event] = []
        key = self._key(obj, item)
        if item.get("type") == "message":
            for n, part in enumerate(item.get("content") or []):
                if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                    name = "text" if part.get("type") == "output_text" else "refusal"
                    fake = {"item_id": key, "content_index": n, name: part.get(name)}
                    events += self._rest(fake, name, TextDelta)
        elif item.get("type") == "reasoning":
            for field, parts in (("summary_index", item.get("summary")),
                                 ("content_index", item.get("content"))):  # fmt: skip
                for n, part in enumerate(parts if isinstance(parts, list) else []):
                    if isinstance(part, dict):
                        fake = {"item_id": key, field: n, "text": part.get("text")}
                        events += self._rest(fake, "text", ReasoningDelta)
        return events

    def _call_item(self, obj: dict[str, Any], item: dict[str, Any], *, whole: bool) -> list[Event]:
        index, _ = self._call(self._key(obj, item), item)
        events: list[Event] = []
        if index not in self.named and (item.get("name") or item.get("call_id")):
            self.named.add(index)
            events.append(
                ToolCallDelta(
                    index=index,
                    id=_str_or_none(item.get("call_id")),
                    name=_str_or_none(item.get("name")),
                )
            )
        if whole or item.get("arguments"):
            events += self._args_rest(index, item.get("arguments"))
        return events

    def _args_rest(self, index: int, arguments: Any) -> list[Event]:
        if not isinstance(arguments, str):
            return []
        seen = self.args.get(index, "")
        if not arguments.startswith(seen) or len(arguments) == len(seen):
            return []
        self.args[index] = arguments
        return [ToolCallDelta(index=index, arguments=arguments[len(seen) :])]

    def _end(self, kind: str, response: Any) -> list[Event]:
        response = response if isinstance(response, dict) else {}
        if isinstance(response.get("id"), str):
            self.response_id = response["id"]
        events: list[Event] = []
        output = response.get("output")
        for n, item in enumerate(output if isinstance(output, list) else []):
            if not isinstance(item, dict):
                continue
            key = self._key({"output_index": n}, item)
            if key not in self.output:  # an item the stream never finished
                self.output[key] = item
                if item.get("type") == "function_call":
                    events += self._call_item({"output_index": n}, item, whole=True)
                elif not self.streamed:
                    # Its text only here. (Text that came as deltas is not given again:
                    # a server without ids and indexes can't say which item it was.)
                    events += self._item_rest({"output_index": n}, item)
        if kind == "response.failed":
            error = response.get("error")
            events.append(
                _error(
                    error if isinstance(error, dict) else {},
                    "The endpoint said the response failed",
                )
            )
            events.append(self.done(response))
            return events
        usage = usage_event(response.get("usage"))
        if usage is not None:
            events.append(usage)
        if kind == "response.incomplete" or response.get("status") == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            events.append(Finish(str(reason or "incomplete")))
        else:
            events.append(Finish("tool_calls" if self.args or self.calls else "stop"))
        events.append(self.done(response))
        return events

    def done(self, response: dict[str, Any]) -> ResponseDone:
        return ResponseDone(
            id=self.response_id,
            output=list(self.output.values()),
            status=_str_or_none(response.get("status")) or "",
        )


def whole_response_events(obj: Any) -> list[Event] | None:
    """The events of a whole (not streamed) Responses object; None when it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("output"), list):
        return None
    reader = ResponsesEvents()
    status = obj.get("status")
    kind = {"incomplete": "response.incomplete", "failed": "response.failed"}.get(
        status if isinstance(status, str) else "", "response.completed"
    )
    return reader._end(kind, obj)
