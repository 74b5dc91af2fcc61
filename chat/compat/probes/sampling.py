"""The sampling probes: token limits, stop sequences, several choices, seed, logprobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..base import (
    DIFFERENT,
    INCONCLUSIVE,
    LIMIT,
    SUPPORTED,
    Context,
    Outcome,
    chat_body,
    once,
    refused,
    short,
)
from .common import (
    CHAT_PROMPT,
    COUNT_PROMPT,
    SEED_PROMPT,
    STOP_PROMPT,
    _ok,
    _plural,
)


def _limit_probe(name: str) -> Callable[[Context], Awaitable[Outcome]]:
    async def probe(ctx: Context) -> Outcome:
        """``max_tokens`` / ``max_completion_tokens`` = 16 on a long answer: honoured
        (finish_reason length, or at most 16 tokens) is supported; more tokens than the
        limit is different (ignored); a refusal is unsupported."""
        body = {"model": ctx.model, "messages": [{"role": "user", "content": COUNT_PROMPT}]}
        body[name] = LIMIT
        reply = await once(ctx, body)
        if reply.error is not None:
            return refused(reply.error, reply.sent, what=name)
        tokens, reason = reply.completion_tokens, reply.finish_reason
        facts = {"completion_tokens": tokens, "finish_reason": reason}
        if tokens is not None and tokens > LIMIT:
            summary = f"Accepted but ignored: {tokens} tokens for a limit of {LIMIT}"
            return _ok(DIFFERENT, summary, reply, **facts)
        if reason == "length" or tokens is not None:
            shown = _plural(tokens, "token") if tokens is not None else "no usage"
            return _ok(SUPPORTED, f"Honoured: finish_reason {reason}, {shown}", reply, **facts)
        words = len(reply.text.split())
        if words > LIMIT * 2:
            return _ok(DIFFERENT, f"Accepted but apparently ignored: {words} words", reply)
        summary = f"Accepted (finish_reason {reason}; no usage to count tokens)"
        return _ok(SUPPORTED, summary, reply, **facts)

    return probe


async def probe_stop(ctx: Context) -> Outcome:
    """``stop: [","]`` on a prompt whose answer has commas: a comma in the text is
    different (ignored). No comma proves something only when the same prompt without
    ``stop`` does answer with a comma (a short answer may have none anyway): then it is
    supported, else, or when cut by the token limit, can't tell."""
    reply = await once(ctx, chat_body(ctx, STOP_PROMPT, stop=[","]))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="stop")
    if "," in reply.text:
        return _ok(DIFFERENT, 'The stop sequence "," is in the answer: stop was ignored', reply)
    if reply.finish_reason == "length":
        return _ok(INCONCLUSIVE, "The answer hit the token limit before any comma", reply)
    free = await once(ctx, chat_body(ctx, STOP_PROMPT))
    shown = f"{short(reply.text, 95)} | without stop: {short(free.text, 95)}"
    if free.error is not None:
        summary = f"No comma, but the same prompt without stop failed: {short(free.error.message)}"
        return _ok(INCONCLUSIVE, summary, reply, shown)
    if "," not in free.text:
        summary = 'No "," in the answer, but none without stop either: nothing to stop'
        return _ok(INCONCLUSIVE, summary, reply, shown)
    summary = f'Stopped before "," (finish_reason {reply.finish_reason}), which it has without stop'
    return _ok(SUPPORTED, summary, reply, shown)


async def probe_n(ctx: Context) -> Outcome:
    """``n: 2``: two choices is supported, any other count different."""
    reply = await once(ctx, chat_body(ctx, SEED_PROMPT, n=2))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="n=2")
    choices = reply.obj.get("choices")
    count = len(choices) if isinstance(choices, list) else 0
    if count == 2:
        return _ok(SUPPORTED, "Two choices for n=2", reply)
    return _ok(DIFFERENT, f"{_plural(count, 'choice')} for n=2", reply, choices=count)


async def probe_seed(ctx: Context) -> Outcome:
    """The same seed twice, then other seeds, then the same seed twice at once (this probe
    runs when nothing else of the check does): the same text every time for the one seed
    and another text for another seed is supported; two different texts for one seed is
    different, also when they differ only when sent at once (llama.cpp batches concurrent
    requests, which changes the numbers). When every seed gives the same text (greedy
    decoding, a fixed reply) the seed made no difference that could be seen: can't tell."""
    texts = []
    sent = ""
    # The same seed twice, then other seeds until one answers differently (short answers
    # often start alike, so one other seed is not always enough to tell).
    for seed in (4242, 4242, 4243, 4244):
        reply = await once(ctx, chat_body(ctx, SEED_PROMPT, seed=seed))
        sent = sent or reply.sent
        if reply.error is not None:
            return refused(reply.error, reply.sent, what="seed")
        texts.append(reply.text)
        if len(texts) == 2 and texts[0] != texts[1]:
            snippet = f"{short(texts[0], 95)} | {short(texts[1], 95)}"
            return Outcome(DIFFERENT, "The same seed gave two different answers", 200, None,
                           snippet, sent)  # fmt: skip
        if len(texts) > 2 and texts[-1] != texts[0]:
            break
    else:
        summary = "Every seed gave the same answer: the seed changed nothing that could be seen"
        return Outcome(INCONCLUSIVE, summary, 200, None, short(texts[0]), sent)
    for _ in range(2):  # whether batched requests change the text is a matter of timing
        together = await asyncio.gather(
            *(once(ctx, chat_body(ctx, SEED_PROMPT, seed=4242)) for _ in range(2))
        )
        failed = next((r.error for r in together if r.error is not None), None)
        if failed is not None:
            summary = f"Same seed, same answer one at a time; two at once failed: {failed.message}"
            return Outcome(INCONCLUSIVE, short(summary), 200, None, short(texts[0]), sent)
        odd = [r.text for r in together if r.text != texts[0]]
        if odd:
            break
    if odd:
        summary = (
            "The same seed gave the same answer one request at a time, but another one "
            "when two were sent at once"
        )
        snippet = f"{short(texts[0], 95)} | at once: {short(odd[0], 95)}"
        return Outcome(DIFFERENT, summary, 200, None, snippet, sent)
    summary = "The same seed gave the same answer, also two at once; another seed a different one"
    return Outcome(SUPPORTED, summary, 200, None, short(texts[0]), sent)


async def probe_logprobs(ctx: Context) -> Outcome:
    """``logprobs: true, top_logprobs: 2``: supported when choices[0].logprobs.content
    lists tokens with logprob and top_logprobs; accepted without them is different."""
    reply = await once(ctx, chat_body(ctx, CHAT_PROMPT, logprobs=True, top_logprobs=2))
    if reply.error is not None:
        return refused(reply.error, reply.sent, what="logprobs")
    logprobs = reply.choice.get("logprobs")
    if not isinstance(logprobs, dict) or not logprobs:
        return _ok(DIFFERENT, "Accepted, but no logprobs came back", reply)
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return _ok(DIFFERENT, "logprobs without a content list", reply, logprobs)
    first = content[0] if isinstance(content[0], dict) else {}
    top = first.get("top_logprobs")
    if not isinstance(first.get("logprob"), int | float) or not isinstance(top, list):
        return _ok(DIFFERENT, "logprobs entries lack logprob or top_logprobs", reply, content[0])
    summary = f"{_plural(len(content), 'token')} with logprobs, {len(top)} alternatives each"
    return _ok(SUPPORTED, summary, reply, content[:2])
