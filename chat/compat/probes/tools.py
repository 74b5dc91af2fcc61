"""The tool probes: tool_choice auto / required / named, parallel calls (and
``parallel_tool_calls: false``), and tool calls streamed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chat.upstream import Finish, ToolCallDelta

from ..base import (
    DIFFERENT,
    INCONCLUSIVE,
    SUPPORTED,
    Context,
    Outcome,
    Reply,
    chat_body,
    choice_of,
    once,
    parsed_json,
    refused,
    short,
    stream,
)
from .common import (
    AUTO_TEXT,
    CLOCK,
    CUT_BY_LIMIT,
    PARALLEL_PROMPT,
    TOOL_LIMIT,
    WEATHER,
    _ok,
    _plural,
)


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    calls = reply.message.get("tool_calls")
    out = []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            out.append({"name": fn.get("name"), "arguments": fn.get("arguments")})
    legacy = reply.message.get("function_call")
    if not out and isinstance(legacy, dict):
        out.append({"name": legacy.get("name"), "arguments": legacy.get("arguments")})
    return out


def _json_args(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    value, problem = parsed_json(arguments) if isinstance(arguments, str) else (None, "")
    return value if problem is None else None


# A named tool_choice, or parallel_tool_calls false, is asked this many times before it
# is called honoured: one call to the named function, or one call at all, can be the
# model's own choice (llama.cpp, which ignores both, was seen to make each).
NAMED_ATTEMPTS = 3


@dataclass(frozen=True)
class _Ask:
    """What one tool probe sends and expects (see ``_tool_probe``)."""

    tools: list[dict[str, Any]]
    prompt: str
    choice: Any
    want: int
    what: str
    at_most: int | None = None
    control: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def named(self) -> str | None:
        return self.choice["function"]["name"] if isinstance(self.choice, dict) else None


def _tool_probe(
    *,
    tools: list[dict[str, Any]],
    prompt: str,
    choice: Any,
    want: int,
    what: str,
    at_most: int | None = None,
    control: dict[str, Any] | None = None,
    **extra: Any,
) -> Callable[[Context], Awaitable[Outcome]]:
    ask = _Ask(tools, prompt, choice, want, what, at_most, control, extra)

    async def probe(ctx: Context) -> Outcome:
        """Tools offered with a tool_choice: supported when the answer calls them (``want``
        calls at once) with JSON arguments; fewer calls, or arguments that are not JSON,
        is different, and so is a text answer to tool_choice "required" (under "auto" the
        model may answer in text: can't tell); can't tell either when the token limit cut
        the answer; a refusal is unsupported. A tool_choice naming a function makes a call
        to another function (or a text answer) different; ``at_most`` (with
        ``parallel_tool_calls: false``) makes more calls than that different, and no call
        at all can't tell (there was nothing to count); as few calls as that is supported
        only when the same request with ``control`` (``parallel_tool_calls: true``) gets
        more (a small model may make one call anyway): else can't tell."""
        return await _ask_tools(ctx, ask)

    return probe


async def _ask_tools(ctx: Context, ask: _Ask) -> Outcome:
    body = chat_body(ctx, ask.prompt, limit=TOOL_LIMIT, tools=ask.tools, tool_choice=ask.choice,
                     **ask.extra)  # fmt: skip
    reply = await once(ctx, body)
    if reply.error is not None:
        return refused(reply.error, reply.sent, what=ask.what)
    calls = _tool_calls(reply)
    # Like the JSON probes: an answer the token limit cut says nothing about the
    # feature (the call may have been on its way), so it is "can't tell", not different.
    status = INCONCLUSIVE if reply.finish_reason == "length" else DIFFERENT
    cut = CUT_BY_LIMIT if status == INCONCLUSIVE else ""
    if not calls:
        return _no_call(ask, reply, status, cut)
    judged = _judge_names(ask, reply, calls, status, cut)
    if judged is not None:
        return judged
    if len(calls) < ask.want:
        summary = f"{_plural(len(calls), 'tool call')} where {ask.want} were asked for at once"
        if ask.choice == "auto" and not cut:
            # How many calls to make is the model's choice too.
            summary += ", which tool_choice auto allows: can't tell"
            return _ok(INCONCLUSIVE, summary, reply, calls, calls=len(calls))
        return _ok(status, summary + cut, reply, calls, calls=len(calls))
    shown = ", ".join(str(c["name"]) for c in calls)
    if ask.at_most is not None and ask.control is not None:
        return await _more_without(ctx, ask, body, reply, calls)
    if ask.named is not None and ask.control is not None:
        return await _others_without(ctx, ask, body, reply, calls)
    return _ok(SUPPORTED, f"Called {shown} with JSON arguments", reply, calls,
               calls=len(calls))  # fmt: skip


def _no_call(ask: _Ask, reply: Reply, status: str, cut: str) -> Outcome:
    """A text answer, without a tool call."""
    if ask.choice == "auto" and not cut:
        # The model may answer in text under "auto": nothing to conclude (a server
        # that ignores tools shows in the "required" row).
        return _ok(INCONCLUSIVE, AUTO_TEXT, reply, calls=0)
    if ask.at_most is not None:
        summary = "Answered in text, without a tool call: no calls to count" + cut
        return _ok(INCONCLUSIVE, summary, reply, calls=0)
    return _ok(status, "Answered in text, without a tool call" + cut, reply, calls=0)


def _judge_names(
    ask: _Ask, reply: Reply, calls: list[dict[str, Any]], status: str, cut: str
) -> Outcome | None:
    """The verdict on which functions were called and how many (over ``at_most``), with
    what arguments; None when that leaves only the count of calls to judge."""
    names = {t["function"]["name"] for t in ask.tools}
    named = ask.named
    if named is not None:
        # A whole call to another offered function: the naming was ignored, cut or not.
        others = [c for c in calls if c["name"] != named and c["name"] in names
                  and _json_args(c["arguments"]) is not None]  # fmt: skip
        if others:
            summary = f"Called {others[0]['name']}, not {named} that tool_choice names"
            return _ok(DIFFERENT, summary, reply, calls, calls=len(calls))
        names = {named}
    if ask.at_most is not None and len(calls) > ask.at_most:
        shown = ", ".join(str(c["name"]) for c in calls)
        summary = (
            f"{_plural(len(calls), 'tool call')} ({shown}) where {ask.what} allows {ask.at_most}"
        )
        return _ok(DIFFERENT, summary, reply, calls, calls=len(calls))
    bad = [c for c in calls if c["name"] not in names or _json_args(c["arguments"]) is None]
    if bad and cut and len(calls) - len(bad) >= ask.want:
        # Enough whole calls, then one the limit cut (llama.cpp keeps calling).
        whole = ", ".join(str(c["name"]) for c in calls if c not in bad)
        summary = f"Called {whole} with JSON arguments; a further call was cut by the limit"
        return _ok(SUPPORTED, summary, reply, calls, calls=len(calls) - len(bad))
    if bad:
        summary = "A tool call with an unknown name or arguments that are not JSON" + cut
        return _ok(status, summary, reply, calls, calls=len(calls))
    return None


async def _with_control(
    ctx: Context, body: dict[str, Any], calls: list[dict[str, Any]], control: dict[str, Any]
) -> tuple[Reply, list[dict[str, Any]], str, str]:
    """The same request with ``control`` instead: its reply, its calls, the flag as words
    and the evidence (the calls first, then the control's)."""
    free = await once(ctx, {**body, **control})
    free_calls = _tool_calls(free) if free.error is None else []
    flag = ", ".join(f"{k} {str(v).lower()}" for k, v in control.items())
    shown = f"{short(calls, 95)} | with {flag}: {short(free_calls or free.text, 95)}"
    return free, free_calls, flag, shown


async def _more_without(ctx: Context, ask: _Ask, body: dict, reply: Reply, calls: list) -> Outcome:
    """``calls`` kept within ``at_most``: whether the limit did it. A model may make that
    few calls on its own, so the request is asked twice more (more calls: different),
    then with ``control`` instead (supported when that gets more calls)."""
    at_most, control = ask.at_most or 0, ask.control or {}
    for _ in range(NAMED_ATTEMPTS - 1):
        again = await once(ctx, body)
        more = _tool_calls(again)
        if again.error is None and len(more) > at_most:
            names = ", ".join(str(c["name"]) for c in more)
            summary = f"{_plural(len(more), 'call')} ({names}) with {ask.what} (asked again)"
            return _ok(DIFFERENT, summary, again, more, calls=len(more))
    free, other, flag, shown = await _with_control(ctx, body, calls, control)
    called = ", ".join(str(c["name"]) for c in calls)
    facts = {"calls": len(calls), "control_calls": len(other)}
    if len(other) > at_most:
        summary = f"Called only {called}; with {flag} the same request gets {len(other)} calls"
        return _ok(SUPPORTED, summary, reply, shown, **facts)
    if free.error is not None:
        why = f"failed: {short(free.error.message, 80)}"
    else:
        why = f"gets {_plural(len(other), 'call')} too"
    summary = f"Called only {called}, but with {flag} the same request {why}: can't tell"
    return _ok(INCONCLUSIVE, summary, reply, shown, **facts)


async def _others_without(
    ctx: Context, ask: _Ask, body: dict, reply: Reply, calls: list
) -> Outcome:
    """Only ``named`` called: whether the naming did it. A model may pick that function
    on its own, so the request is asked twice more (any other call: different), then
    with ``control`` instead (tool_choice "required"): supported only when that calls
    another function (the naming changed what was called), else can't tell."""
    named, control = str(ask.named), ask.control or {}
    for _ in range(NAMED_ATTEMPTS - 1):
        again = await once(ctx, body)
        other = [c for c in _tool_calls(again) if c["name"] != named]
        if again.error is None and other:
            summary = f"Called {other[0]['name']}, not {named} that tool_choice names (asked again)"
            return _ok(DIFFERENT, summary, again, _tool_calls(again), calls=len(calls))
    free, free_calls, flag, shown = await _with_control(ctx, body, calls, control)
    others = sorted({str(c["name"]) for c in free_calls} - {named})
    if others:
        summary = (
            f"Called only {named}, {NAMED_ATTEMPTS} times; with {flag} the same request "
            f"calls {', '.join(others)}"
        )
        return _ok(SUPPORTED, summary, reply, shown, calls=len(calls))
    why = f"failed: {short(free.error.message, 80)}" if free.error else f"calls {named} too"
    if free.error is None and not free_calls:
        why = "answers in text"
    summary = f"Called only {named}, but with {flag} the same request {why}: can't tell"
    return _ok(INCONCLUSIVE, summary, reply, shown, calls=len(calls))


async def probe_tool_stream(ctx: Context) -> Outcome:
    """Two tool calls streamed: supported when every fragment carries an ``index`` and
    each index belongs to one call id; fragments without an index, or one index reused by
    calls with different ids (both seen in real servers), are different; fragments that do
    not join into JSON are different too unless the token limit cut the answer (can't
    tell); no fragments at all (a text answer, which tool_choice auto allows): can't
    tell."""
    body = chat_body(ctx, PARALLEL_PROMPT, limit=TOOL_LIMIT, tools=[WEATHER, CLOCK],
                     tool_choice="auto", stream=True)  # fmt: skip
    result = await stream(ctx, body)
    if result.error is not None and not result.answered:
        return refused(result.error, result.sent, what="streamed tool calls")
    cut = any(isinstance(e, Finish) and e.choice == 0 and e.reason == "length"
              for e in result.events)  # fmt: skip
    # A call cut by the token limit is "can't tell", as in the one-shot tool probes.
    different, tail = (INCONCLUSIVE, CUT_BY_LIMIT) if cut else (DIFFERENT, "")
    fragments: list[dict[str, Any]] = []
    for chunk in result.chunks():
        delta = choice_of(chunk).get("delta")
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        fragments += [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    if not fragments:  # under tool_choice "auto" the model may answer in text
        summary = "No tool-call fragments were streamed" + (tail or f": {AUTO_TEXT.lower()}")
        return Outcome(INCONCLUSIVE, summary, 200, None, short(result.text), result.sent)
    missing = sum(1 for f in fragments if not isinstance(f.get("index"), int))
    ids: dict[int, set[str]] = {}
    for f in fragments:
        if isinstance(f.get("index"), int) and isinstance(f.get("id"), str) and f["id"]:
            ids.setdefault(f["index"], set()).add(f["id"])
    reused = sorted(i for i, found in ids.items() if len(found) > 1)
    joined: dict[int, str] = {}
    for event in result.events:
        if isinstance(event, ToolCallDelta):
            joined[event.index] = joined.get(event.index, "") + event.arguments
    calls = len({f["id"] for f in fragments if isinstance(f.get("id"), str)}) or len(joined)
    facts = {"fragments": len(fragments), "missing_index": missing, "reused": reused,
             "calls": calls}  # fmt: skip
    snippet = short(fragments[:4])
    problems = []
    if missing:
        problems.append(f"{missing} of {_plural(len(fragments), 'fragment')} carry no index")
    if reused:
        problems.append(f"index {', '.join(map(str, reused))} is reused by different calls")
    if problems:
        summary = "; ".join(problems) + " (calls must be told apart by id)"
        return Outcome(DIFFERENT, summary[0].upper() + summary[1:], 200, None, snippet,
                       result.sent, facts)  # fmt: skip
    if any(_json_args(args) is None for args in joined.values()):
        return Outcome(different, "The fragments of a call do not join into JSON" + tail, 200,
                       None, snippet, result.sent, facts)  # fmt: skip
    summary = f"{_plural(calls, 'call')} in {_plural(len(fragments), 'fragment')}, one index each"
    return Outcome(SUPPORTED, summary, 200, None, snippet, result.sent, facts)
