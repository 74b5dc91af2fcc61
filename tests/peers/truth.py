"""What a real server really does, feature by feature, found with plain HTTP requests of
our own (not the app's client, not the probes' prompts), to hold the compatibility report
against.

Each ``truth_<key>`` returns ``(status, why)``: the verdict the report must give for that
row and the fact that makes it right. Where a fact depends on a model's free choice, the
oracle removes the choice (greedy decoding, a sequence taken from the answer itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from chat.compat import DIFFERENT, INCONCLUSIVE, SUPPORTED, UNSUPPORTED
from chat.compat.probes import CLOCK, PNG_DATA_URL, WEATHER

from .conftest import Peer

# A verdict, or the verdicts that are all right (where the model chooses), and why.
Truth = tuple[str | frozenset[str], str]
TIMEOUT = httpx.Timeout(300, connect=10)
BOTH = "Get the weather in Paris and the time in Tokyo, both at once."
# Verdicts that are all right where the model's own choice decides between them.
MODELS_CHOICE = frozenset({SUPPORTED, INCONCLUSIVE})
LONG_PROMPT = "Write the numbers from one to two hundred in words, separated by spaces."


class Oracle:
    def __init__(self, peer: Peer, model: str) -> None:
        self.peer, self.model = peer, model
        headers = {"authorization": f"Bearer {peer.api_key}"} if peer.api_key else {}
        # A new connection each time: llama-server closes idle ones after 5 s, and a
        # request racing that close is lost (the oracle must not guess, so no retries).
        self.http = httpx.Client(base_url=peer.base_url + "/", headers=headers, timeout=TIMEOUT,
                                 limits=httpx.Limits(max_keepalive_connections=0))  # fmt: skip

    def close(self) -> None:
        self.http.close()

    def body(self, prompt: Any = "Say hello.", **extra: Any) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}], **extra}

    def post(self, body: dict[str, Any], path: str = "chat/completions") -> httpx.Response:
        return self.http.post(path, json=body)

    def chat(self, **extra: Any) -> dict[str, Any]:
        prompt = extra.pop("prompt", "Say hello.")
        response = self.post(self.body(prompt, **extra))
        response.raise_for_status()
        return response.json()

    def stream(self, **extra: Any) -> list[Any]:
        """The SSE data payloads, parsed (``"[DONE]"`` kept as the string)."""
        out: list[Any] = []
        body = self.body(extra.pop("prompt", "Say hello."), stream=True, **extra)
        with self.http.stream("POST", "chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data = line[5:].strip()
                    out.append(data if data == "[DONE]" else json.loads(data))
        return out


def text_of(obj: dict[str, Any], index: int = 0) -> str:
    return obj["choices"][index]["message"].get("content") or ""


def greedy(o: Oracle) -> dict[str, Any]:
    """Sampling switched off: the same request gets the same answer every time, so one
    request settles what the model does, and two can be compared. On llama-server,
    temperature 0 and top_k 1 take the most likely token (the seed then changes nothing,
    but is fixed anyway), and no prompt cache: its reuse evaluates a prompt in other batch
    sizes, which llama.cpp says may change the logits' last bits. The oracle sends one
    request at a time (batched with others, the numbers could change too)."""
    if o.peer.name == "llama.cpp":
        return {"temperature": 0, "top_k": 1, "seed": 1, "cache_prompt": False}
    return {"temperature": 0, "seed": 1}


# --------------------------------------------------------------------------- rows


def truth_models(o: Oracle) -> Truth:
    data = o.http.get("models").json().get("data")
    ids = [m["id"] for m in data]
    assert o.model in ids or o.peer.name == "llama.cpp", ids
    return SUPPORTED, f'GET /models answers {{"data": [{{"id"}}]}}: {", ".join(ids)}'


def truth_chat(o: Oracle) -> Truth:
    obj = o.chat(max_tokens=8)
    choice = obj["choices"][0]
    assert isinstance(choice["message"]["content"], str) and choice["finish_reason"]
    assert isinstance(obj.get("usage"), dict)
    return SUPPORTED, "text content, a finish_reason and usage"


def truth_stream(o: Oracle) -> Truth:
    chunks = o.stream(max_tokens=8)
    assert chunks[-1] == "[DONE]"
    assert any(c["choices"] and c["choices"][0].get("finish_reason") for c in chunks[:-1])
    return SUPPORTED, f"{len(chunks) - 1} chunks, a finish_reason, then [DONE]"


def truth_stream_usage(o: Oracle) -> Truth:
    chunks = o.stream(max_tokens=8, stream_options={"include_usage": True})
    carriers = [c for c in chunks[:-1] if c.get("usage")]
    assert carriers, "no usage chunk"
    if carriers[-1]["choices"]:
        return DIFFERENT, f"usage comes on a chunk with choices {carriers[-1]['choices']}"
    return SUPPORTED, "usage comes on a last chunk with choices: []"


def _limit(name: str) -> Callable[[Oracle], Truth]:
    def truth(o: Oracle) -> Truth:
        obj = o.chat(prompt=LONG_PROMPT, **{name: 5})
        tokens = obj["usage"]["completion_tokens"]
        if tokens > 5:
            return DIFFERENT, f"{name}=5 gave {tokens} completion tokens"
        return (
            SUPPORTED,
            f"{name}=5 gave {tokens} tokens, finish {obj['choices'][0]['finish_reason']}",
        )

    return truth


def truth_stop(o: Oracle) -> Truth:
    free = text_of(o.chat(prompt=LONG_PROMPT, max_tokens=24, **greedy(o)))
    words = free.split()
    assert len(words) > 4, free
    sequence = words[len(words) // 2]  # a word from the middle of the answer itself
    before = free[: free.index(sequence)]
    stopped = text_of(o.chat(prompt=LONG_PROMPT, max_tokens=24, stop=[sequence], **greedy(o)))
    if sequence in stopped:
        return DIFFERENT, f"stop [{sequence!r}] ignored: {stopped[:60]!r}"
    assert stopped == before, (stopped, before)
    return SUPPORTED, f"stop [{sequence!r}] cut {free[:40]!r}… to {stopped!r}"


def truth_n(o: Oracle) -> Truth:
    count = len(o.chat(max_tokens=4, n=3)["choices"])
    return (SUPPORTED if count == 3 else DIFFERENT), f"n=3 gave {count} choices"


def truth_seed(o: Oracle) -> Truth:
    """The seed, one request at a time (the oracle is alone on the server): the same seed
    gives the same text (measured on llama-server, under load: 5 pairs out of 5), another
    seed another text.

    Whether the same seed gives another text when requests run at once is not asked here.
    It is a matter of timing (which requests share a batch), so only a difference seen
    proves anything: the report's "different ... at once" is accepted on its own evidence
    (``verdicts_agree``), and its "supported" after two tries at once (the probe's own,
    product behaviour) is not held against tries of ours. The oracle used to look for it
    up to three times, and then failed the run whenever it saw what the probe's tries had
    not (or the other way round)."""

    def one(seed: int) -> str:
        prompt = "Write one short sentence about a river."
        return text_of(o.chat(prompt=prompt, max_tokens=32, seed=seed))

    a, b = one(11), one(11)
    if a != b:
        return DIFFERENT, f"seed 11 twice gave {a!r} and {b!r}"
    others = [one(seed) for seed in (12, 13, 14)]
    c = next((t for t in others if t != a), None)
    if c is None:
        return INCONCLUSIVE, f"seeds 11 to 14 all gave {a!r}: the seed changes nothing"
    return SUPPORTED, f"seed 11 twice: {a[:30]!r}; seed {12 + others.index(c)}: {c[:30]!r}"


def truth_logprobs(o: Oracle) -> Truth:
    lp = o.chat(max_tokens=4, logprobs=True, top_logprobs=3)["choices"][0].get("logprobs")
    content = (lp or {}).get("content") or []
    if not content:
        return DIFFERENT, f"logprobs asked for, got {lp!r}"
    assert len(content[0]["top_logprobs"]) == 3
    return SUPPORTED, f"{len(content)} tokens with logprob and 3 top_logprobs"


def truth_json_object(o: Oracle) -> Truth:
    obj = o.chat(prompt="Describe a cat as JSON.", max_tokens=128,
                 response_format={"type": "json_object"})  # fmt: skip
    text = text_of(obj)
    try:
        return (SUPPORTED, f"valid JSON: {text[:50]!r}") if isinstance(json.loads(text), dict) \
            else (DIFFERENT, f"JSON but not an object: {text[:50]!r}")  # fmt: skip
    except ValueError:
        if obj["choices"][0]["finish_reason"] == "length":
            # JSON as far as it went (llama.cpp constrains it by grammar); whether the
            # model closes it within a limit is its own business.
            return MODELS_CHOICE, f"cut by the limit: {text[:50]!r}"
        return DIFFERENT, f"not JSON: {text[:50]!r}"


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "legs": {"type": "integer"}},
    "required": ["name", "legs"],
    "additionalProperties": False,
}


def truth_json_schema(o: Oracle) -> Truth:
    import jsonschema

    rf = {"type": "json_schema", "json_schema": {"name": "cat", "strict": True, "schema": SCHEMA}}
    obj = o.chat(prompt="Describe a cat.", max_tokens=128, response_format=rf)
    text = text_of(obj)
    try:
        value = json.loads(text)
    except ValueError:
        if obj["choices"][0]["finish_reason"] == "length":
            # JSON as far as it went (llama.cpp constrains it by grammar); whether the
            # model closes it within a limit is its own business.
            return MODELS_CHOICE, f"cut by the limit: {text[:50]!r}"
        return DIFFERENT, f"not JSON: {text[:50]!r}"
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(value))
    if errors:
        return DIFFERENT, f"JSON against the schema: {errors[0].message}"
    return SUPPORTED, f"valid against another schema: {text[:50]!r}"


def _calls(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The whole calls of an answer (a last one may be cut by the token limit)."""
    whole = []
    for call in obj["choices"][0]["message"].get("tool_calls") or []:
        try:
            json.loads(call["function"]["arguments"])
        except ValueError:
            continue
        whole.append(call)
    return whole


# A pretrained model copies the user's words first: this message makes even Gemma 270M
# write a call, so whether the server parses calls does not depend on the model's mood.
ECHO_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def parses_calls(o: Oracle) -> bool:
    """Whether the server turns a call the model writes into ``tool_calls`` (cached). One
    greedy request: sampled, the model now and then wrote text instead (seen in CI while
    the report itself got a parsed call) and was asked up to three times; greedy, it
    writes the same calls every time (measured under load: 5 requests out of 5)."""
    if not hasattr(o, "_parses"):
        obj = o.chat(prompt=ECHO_CALL, max_tokens=128, tools=[WEATHER], tool_choice="auto",
                     **greedy(o))  # fmt: skip
        o._parses = bool(_calls(obj))
    return o._parses


def truth_tools_required(o: Oracle) -> Truth:
    """One greedy request (it was asked twice, sampled, in case text came first)."""
    obj = o.chat(prompt="Hi.", max_tokens=128, tools=[WEATHER], tool_choice="required",
                 **greedy(o))  # fmt: skip
    calls, finish = _calls(obj), obj["choices"][0]["finish_reason"]
    if calls:
        return SUPPORTED, f"tool_choice required: {calls[0]['function']}"
    if finish != "length":
        return DIFFERENT, f"required, but it ended ({finish}) in text: {text_of(obj)[:50]!r}"
    # llama.cpp's grammar lets text come first but never an end without a call.
    return SUPPORTED, "required: text first, no end without a call (cut by the limit)"


CHOICE_WHY = "the model chooses under auto (text, one call or more); the server parses calls"


def truth_tools_auto(o: Oracle) -> Truth:
    """Under "auto" the model decides. When the server parses the calls a model writes, a
    call is supported and a text answer can't tell: either is right, depending on what the
    model chose that time; "behaves differently" would be a false claim."""
    if parses_calls(o):
        return MODELS_CHOICE, CHOICE_WHY
    obj = o.chat(prompt="What is the weather in Paris?", max_tokens=64, tools=[WEATHER],
                 tool_choice="auto")  # fmt: skip
    return INCONCLUSIVE, f"no calls at all, a text answer (auto allows): {text_of(obj)[:50]!r}"


def truth_tools_parallel(o: Oracle) -> Truth:
    if parses_calls(o):
        return MODELS_CHOICE, CHOICE_WHY
    obj = o.chat(prompt=BOTH, max_tokens=64, tools=[WEATHER, CLOCK], tool_choice="auto")
    return INCONCLUSIVE, f"no calls at all, a text answer (auto allows): {text_of(obj)[:50]!r}"


def _refusal(response: httpx.Response, what: str) -> Truth | None:
    if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 408, 429):
        return UNSUPPORTED, f"{what} refused: HTTP {response.status_code} {response.text[:80]!r}"
    response.raise_for_status()
    return None


def truth_tool_choice_named(o: Oracle) -> Truth:
    """The model is made to write a get_weather call (ECHO_CALL) while tool_choice names
    get_time: a server that honours the naming constrains the call to get_time."""
    named = {"type": "function", "function": {"name": CLOCK["function"]["name"]}}
    response = o.post(o.body(ECHO_CALL, max_tokens=128, tools=[WEATHER, CLOCK],
                             tool_choice=named, **greedy(o)))  # fmt: skip
    if (refusal := _refusal(response, "a named tool_choice")) is not None:
        return refusal
    obj = response.json()
    names = [c["function"]["name"] for c in _calls(obj)]
    finish = obj["choices"][0]["finish_reason"]
    if any(name != "get_time" for name in names):
        return DIFFERENT, f"tool_choice names get_time, the server let through {names}"
    if names:
        return SUPPORTED, f"asked to write get_weather, the server made it call {names}"
    if finish == "length":
        return INCONCLUSIVE, f"no whole call within 128 tokens: {text_of(obj)[:50]!r}"
    return DIFFERENT, f"a named tool_choice, but it ended ({finish}) in text: {text_of(obj)[:50]!r}"


def truth_parallel_false(o: Oracle) -> Truth:
    """The model is made to write two calls; with ``parallel_tool_calls: false`` a server
    that honours it keeps one. One call with false counts only when the same request with
    true gets two (else the flag shows nothing)."""
    two = ECHO_CALL + "\n" + ECHO_CALL.replace("weather", "time")

    def calls(flag: bool) -> tuple[httpx.Response, list[dict[str, Any]]]:
        response = o.post(o.body(two, max_tokens=128, tools=[WEATHER, CLOCK],
                                 tool_choice="required", parallel_tool_calls=flag,
                                 **greedy(o)))  # fmt: skip
        return response, (_calls(response.json()) if response.status_code == 200 else [])

    response, false = calls(False)
    if (refusal := _refusal(response, "parallel_tool_calls")) is not None:
        return refusal
    names = [c["function"]["name"] for c in false]
    if len(false) > 1:
        # The server lets two through; whether the probe's own prompt gets two from a
        # small model is the model's choice (one call either way is "can't tell").
        return frozenset({DIFFERENT, INCONCLUSIVE}), f"false, yet {len(false)} calls: {names}"
    if not false:
        return INCONCLUSIVE, f"no calls to count: {text_of(response.json())[:50]!r}"
    _, true = calls(True)
    if len(true) > 1:
        return SUPPORTED, f"one call ({names}) with false, {len(true)} with true"
    return MODELS_CHOICE, f"one call with false and {len(true)} with true: the flag shows nothing"


def truth_tool_stream(o: Oracle) -> Truth:
    chunks = o.stream(prompt=ECHO_CALL + "\n" + ECHO_CALL.replace("weather", "time"),
                      max_tokens=128, tools=[WEATHER, CLOCK], tool_choice="auto",
                      **greedy(o))  # fmt: skip
    fragments = [f for c in chunks[:-1] if c["choices"]
                 for f in c["choices"][0]["delta"].get("tool_calls") or []]  # fmt: skip
    if not fragments:
        return INCONCLUSIVE, "no tool-call fragments streamed, even for a call in the prompt"
    ids: dict[int, set[str]] = {}
    for f in fragments:
        if "index" not in f:
            return DIFFERENT, f"a fragment without index: {f}"
        if f.get("id"):
            ids.setdefault(f["index"], set()).add(f["id"])
    if any(len(found) > 1 for found in ids.values()):
        return DIFFERENT, f"one index for several call ids: {ids}"
    # Well-formed fragments; whether the probe gets any is the model's choice under auto.
    return MODELS_CHOICE, f"{len(fragments)} fragments, one index per call id ({len(ids)} calls)"


def _role(role: str) -> Callable[[Oracle], Truth]:
    def truth(o: Oracle) -> Truth:
        body = o.body("Hi.", max_tokens=4)
        body["messages"].insert(0, {"role": role, "content": "Be brief."})
        response = o.post(body)
        if response.status_code == 200:
            return SUPPORTED, f"a {role} message is accepted"
        return UNSUPPORTED, f"HTTP {response.status_code}: {response.text[:80]}"

    return truth


def truth_image(o: Oracle) -> Truth:
    parts = [{"type": "text", "text": "Colour?"},
             {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]  # fmt: skip
    response = o.post(o.body(parts, max_tokens=4))
    if response.status_code == 200:
        return SUPPORTED, "an image part is accepted"
    message = response.json()["error"]["message"]
    assert "not supported" in message, message
    return UNSUPPORTED, f"HTTP {response.status_code}: {message[:60]}"


def truth_completions(o: Oracle) -> Truth:
    response = o.post({"model": o.model, "prompt": "Once upon", "max_tokens": 4}, "completions")
    response.raise_for_status()
    assert isinstance(response.json()["choices"][0]["text"], str)
    return SUPPORTED, "POST /completions answers choices[0].text"


def truth_error_shape(o: Oracle) -> Truth:
    response = o.post({**o.body("Hi.", max_tokens=2), "model": "no-such-model-at-all"})
    if response.status_code == 200:
        return DIFFERENT, "a model that does not exist is answered with 200"
    assert isinstance(response.json()["error"]["message"], str)
    return SUPPORTED, f"HTTP {response.status_code} with {{'error': {{'message'}}}}"


# --------------------------------------------------------------------------- Responses API

RESPONSES = "responses"


def _responses(o: Oracle, prompt: Any = "Say hello.", **extra: Any) -> httpx.Response:
    return o.post({"model": o.model, "input": prompt, **extra}, RESPONSES)


def _output_text(obj: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in obj.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
    )


def _server_error(response: httpx.Response, what: str) -> Truth | None:
    if response.status_code >= 500:
        return INCONCLUSIVE, f"{what}: the server fails, HTTP {response.status_code} " \
            f"{response.text[:80]!r}"  # fmt: skip
    return _refusal(response, what)


def _responses_events(o: Oracle) -> list[dict[str, Any]] | Truth:
    """A streamed request's typed events (cached), or the truth when it fails."""
    if not hasattr(o, "_events"):
        body = {"model": o.model, "input": "Say hello.", "max_output_tokens": 16, "stream": True}
        with o.http.stream("POST", RESPONSES, json=body) as response:
            if response.status_code != 200:
                response.read()
                o._events = _server_error(response, "a streamed /responses request")
            else:
                o._events = [
                    json.loads(line[5:]) for line in response.iter_lines()
                    if line.startswith("data:") and line[5:].strip() != "[DONE]"
                ]  # fmt: skip
    return o._events


def truth_responses(o: Oracle) -> Truth:
    response = _responses(o, max_output_tokens=16)
    if (refusal := _server_error(response, "POST /responses")) is not None:
        return refusal
    obj = response.json()
    assert isinstance(obj["output"], list)
    return SUPPORTED, f"an output list, status {obj.get('status')}: {_output_text(obj)[:40]!r}"


def truth_responses_stream(o: Oracle) -> Truth:
    events = _responses_events(o)
    if isinstance(events, tuple):
        return events
    kinds = [e.get("type") for e in events]
    assert kinds[0] == "response.created", kinds[:3]
    assert kinds[-1] in ("response.completed", "response.incomplete"), kinds[-3:]
    if any("sequence_number" not in e for e in events):
        return DIFFERENT, f"{len(events)} typed events without sequence_number"
    return SUPPORTED, f"{len(events)} typed events, numbered, created to completed"


def truth_responses_usage(o: Oracle) -> Truth:
    events = _responses_events(o)
    if isinstance(events, tuple):
        return events
    usage = (events[-1].get("response") or {}).get("usage") or {}
    if isinstance(usage.get("input_tokens"), int) and isinstance(usage.get("output_tokens"), int):
        return SUPPORTED, f"response.completed has usage {usage['input_tokens']} in, " \
            f"{usage['output_tokens']} out"  # fmt: skip
    return DIFFERENT, f"response.completed without usage: {usage}"


FLAT_WEATHER = {"type": "function", **WEATHER["function"]}


def _responses_calls(obj: dict[str, Any]) -> list[dict[str, Any]]:
    whole = []
    for item in obj.get("output") or []:
        if item.get("type") == "function_call":
            try:
                json.loads(item["arguments"])
            except ValueError:
                continue
            whole.append(item)
    return whole


def truth_responses_tools_required(o: Oracle) -> Truth:
    """One greedy request, as for chat (llama-server reads the same sampling fields on
    /responses: it turns the request into a chat completion)."""
    response = _responses(o, "Hi.", max_output_tokens=128, tools=[FLAT_WEATHER],
                          tool_choice="required", **greedy(o))  # fmt: skip
    if (refusal := _server_error(response, "tools on /responses")) is not None:
        return refusal
    obj = response.json()
    if calls := _responses_calls(obj):
        return SUPPORTED, f"required: a function_call {calls[0]['name']}({calls[0]['arguments']})"
    if (obj.get("usage") or {}).get("output_tokens", 0) >= 128:
        return SUPPORTED, "required: text first, no end without a call (cut by the limit)"
    return DIFFERENT, f"required, but it answered in text: {_output_text(obj)[:50]!r}"


def truth_responses_tools_auto(o: Oracle) -> Truth:
    response = _responses(o, ECHO_CALL, max_output_tokens=128, tools=[FLAT_WEATHER],
                          tool_choice="auto", **greedy(o))  # fmt: skip
    if (refusal := _server_error(response, "tools on /responses")) is not None:
        return refusal
    if _responses_calls(response.json()):
        return MODELS_CHOICE, CHOICE_WHY
    return INCONCLUSIVE, "no function_call even for a call written out (auto allows text)"


def truth_responses_json_schema(o: Oracle) -> Truth:
    import jsonschema

    fmt = {"type": "json_schema", "name": "cat", "strict": True, "schema": SCHEMA}
    response = _responses(o, "Describe a cat.", max_output_tokens=128, text={"format": fmt})
    if (refusal := _server_error(response, "text.format json_schema")) is not None:
        return refusal
    obj = response.json()
    text = _output_text(obj)
    try:
        value = json.loads(text)
    except ValueError:
        if (obj.get("usage") or {}).get("output_tokens", 0) >= 128 and text.lstrip()[:1] == "{":
            return MODELS_CHOICE, f"JSON cut by the limit: {text[:50]!r}"
        return DIFFERENT, f"text.format ignored, not JSON: {text[:50]!r}"
    if errors := list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(value)):
        return DIFFERENT, f"JSON against the schema: {errors[0].message}"
    return SUPPORTED, f"valid against another schema: {text[:50]!r}"


def truth_responses_chain(o: Oracle) -> Truth:
    """The same question chained to a stored turn and alone: more input tokens chained is
    the earlier turn added (honoured); as many is accepted but ignored."""
    first = _responses(o, "My name is Ada. Say OK.", max_output_tokens=16, store=True)
    first.raise_for_status()
    question = "What is my name?"
    chained = _responses(o, question, max_output_tokens=16, store=True,
                         previous_response_id=first.json()["id"])  # fmt: skip
    if (refusal := _server_error(chained, "previous_response_id")) is not None:
        return refusal
    alone = _responses(o, question, max_output_tokens=16)
    alone.raise_for_status()
    a, b = chained.json()["usage"]["input_tokens"], alone.json()["usage"]["input_tokens"]
    if a > b:
        return SUPPORTED, f"honoured: {a} input tokens chained, {b} alone"
    return DIFFERENT, f"accepted but ignored: {a} input tokens chained, {b} alone"


def truth_responses_store(o: Oracle) -> Truth:
    first = _responses(o, "Say OK.", max_output_tokens=16, store=True)
    first.raise_for_status()
    response_id = first.json()["id"]
    got = o.http.get(f"{RESPONSES}/{response_id}")
    if got.status_code in (404, 405):
        return UNSUPPORTED, f"GET /responses/{{id}}: HTTP {got.status_code} {got.text[:60]!r}"
    if got.status_code >= 500:
        return (
            INCONCLUSIVE,
            f"GET /responses/{{id}} fails: HTTP {got.status_code} {got.text[:60]!r}",
        )
    got.raise_for_status()
    if got.json().get("id") != response_id:
        return DIFFERENT, "GET /responses/{id} gives a response under another id"
    return SUPPORTED, "GET /responses/{id} gives the stored response back"


def truth_responses_reasoning(o: Oracle) -> Truth:
    response = _responses(o, max_output_tokens=64, reasoning={"effort": "low", "summary": "auto"})
    if (refusal := _server_error(response, "reasoning on /responses")) is not None:
        return refusal
    kinds = [i.get("type") for i in response.json()["output"]]
    if "reasoning" in kinds:
        return SUPPORTED, f"a reasoning item among {kinds}"
    return INCONCLUSIVE, f"accepted, no reasoning item (this model does not reason): {kinds}"


def truth_responses_max_output(o: Oracle) -> Truth:
    response = _responses(o, LONG_PROMPT, max_output_tokens=16)
    if (refusal := _server_error(response, "max_output_tokens")) is not None:
        return refusal
    obj = response.json()
    used, status = obj["usage"]["output_tokens"], obj.get("status")
    if used > 16:
        return DIFFERENT, f"ignored: {used} output tokens for 16"
    if used < 16:
        return INCONCLUSIVE, f"it stopped by itself after {used} tokens"
    if status != "incomplete":
        return DIFFERENT, f"honoured ({used} tokens), but status {status}, not incomplete"
    return SUPPORTED, f"honoured: {used} tokens, status incomplete"


TRUTHS: dict[str, Callable[[Oracle], Truth]] = {
    "models": truth_models,
    "chat": truth_chat,
    "stream": truth_stream,
    "stream_usage": truth_stream_usage,
    "max_tokens": _limit("max_tokens"),
    "max_completion_tokens": _limit("max_completion_tokens"),
    "stop": truth_stop,
    "n": truth_n,
    "seed": truth_seed,
    "logprobs": truth_logprobs,
    "json_object": truth_json_object,
    "json_schema": truth_json_schema,
    "tools_auto": truth_tools_auto,
    "tools_required": truth_tools_required,
    "tools_parallel": truth_tools_parallel,
    "tool_choice_named": truth_tool_choice_named,
    "parallel_false": truth_parallel_false,
    "tool_stream": truth_tool_stream,
    "system_role": _role("system"),
    "developer_role": _role("developer"),
    "image": truth_image,
    "completions": truth_completions,
    "error_shape": truth_error_shape,
    "responses": truth_responses,
    "responses_stream": truth_responses_stream,
    "responses_usage": truth_responses_usage,
    "responses_tools_auto": truth_responses_tools_auto,
    "responses_tools_required": truth_responses_tools_required,
    "responses_json_schema": truth_responses_json_schema,
    "responses_chain": truth_responses_chain,
    "responses_store": truth_responses_store,
    "responses_reasoning": truth_responses_reasoning,
    "responses_max_output": truth_responses_max_output,
}


def find_truths(peer: Peer, model: str) -> dict[str, Truth]:
    oracle = Oracle(peer, model)
    try:
        return {key: truth(oracle) for key, truth in TRUTHS.items()}
    finally:
        oracle.close()
