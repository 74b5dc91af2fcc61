"""Issue "the whole request surface": what reaches the endpoint for every parameter,
the quirk fallbacks, n > 1, logprobs, completions mode and images — through the real
socket -> run -> fake endpoint path."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from channels.db import database_sync_to_async

from chat import conversations
from chat.fake_upstream import tokenize
from chat.models import Conversation, EndpointProfile
from chat.params import PARAMS, params_for
from chat.upstream import fake_app
from tests.integration.test_consumer import connect, messages_of, streamed_text, until_done

pytestmark = pytest.mark.django_db(transaction=True)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()

# name: (what the panel sends, the body field, the value the endpoint must receive)
CHAT_CASES = {
    "temperature": ("0.7", "temperature", 0.7),
    "top_p": ("0.25", "top_p", 0.25),
    "max_tokens": ("12", "max_tokens", 12),
    "presence_penalty": ("-1.5", "presence_penalty", -1.5),
    "frequency_penalty": ("0.4", "frequency_penalty", 0.4),
    "n": ("2", "n", 2),
    "stop": ("END\n\\n\\n", "stop", ["END", "\n\n"]),
    "seed": ("42", "seed", 42),
    "logit_bias": ('{"50256": -100, "13": 5}', "logit_bias", {"50256": -100, "13": 5}),
    "response_format": ("json_object", "response_format", {"type": "json_object"}),
    "logprobs": ("true", "logprobs", True),
    "user": ("user-123", "user", "user-123"),
    "reasoning_effort": ("low", "reasoning_effort", "low"),
    "safety_identifier": ("u-7f3a", "safety_identifier", "u-7f3a"),
    "metadata": ('{"run": "a1"}', "metadata", {"run": "a1"}),
    "extra_body": ('{"top_k": 40, "min_p": 0.05}', "top_k", 40),
}
COMPLETION_CASES = {
    "temperature": ("1.3", "temperature", 1.3),
    "top_p": ("0.9", "top_p", 0.9),
    "completion_max_tokens": ("9", "max_tokens", 9),
    "presence_penalty": ("0.5", "presence_penalty", 0.5),
    "frequency_penalty": ("-0.25", "frequency_penalty", -0.25),
    "n": ("3", "n", 3),
    "stop": ("###\n\\n", "stop", ["###", "\n"]),
    "seed": ("-5", "seed", -5),
    "logit_bias": ('{"198": 10}', "logit_bias", {"198": 10}),
    "completion_logprobs": ("3", "logprobs", 3),
    "suffix": ("-- end", "suffix", "-- end"),
    "echo": ("true", "echo", True),
    "user": ("writer-7", "user", "writer-7"),
    "extra_body": ('{"top_k": 5, "min_p": 0.1}', "top_k", 5),
}


@database_sync_to_async
def conversation_for(user, *, mode="chat", model="demo-fast", quirks=None) -> Conversation:
    profile = EndpointProfile.objects.get(owner=user, is_demo=True)
    if quirks is not None:
        profile.quirks = quirks
        profile.save()
    return conversations.conversation_create(owner=user, profile=profile, model=model, mode=mode)


async def turn(owner, conversation, text="Hello there", **fields):
    comm = await connect(owner, conversation)
    frame = {"action": "send", "content": text, **fields}
    await comm.send_to(text_data=json.dumps(frame))
    frames = await until_done(comm)
    await comm.disconnect()
    return frames


def last_request() -> dict:
    return fake_app().requests[-1]


def test_every_parameter_has_a_case():
    # json_schema, top_logprobs: with their switches below; parallel_tool_calls only goes
    # with tools (tests/integration/test_tools_flow.py).
    covered = set(CHAT_CASES) | set(COMPLETION_CASES)
    covered |= {"json_schema", "top_logprobs", "parallel_tool_calls"}
    # Sent on the Responses API only: each mapped there by test_responses_api.py.
    covered |= {p.name for p in PARAMS if p.apis == ("responses",)}
    assert covered == {p.name for p in PARAMS}
    # Completions mode: every parameter it takes has its own case.
    assert set(COMPLETION_CASES) == {p.name for p in params_for("completion")}


@pytest.mark.parametrize("name", sorted(CHAT_CASES))
async def test_a_set_chat_parameter_reaches_the_endpoint_with_its_name_and_type(owner, name):
    raw, field, expected = CHAT_CASES[name]
    conversation = await conversation_for(owner)
    await turn(owner, conversation, **{f"param:{name}": raw, "param:temperature": ""}
               if name != "temperature" else {f"param:{name}": raw})  # fmt: skip
    body = last_request()["json"]
    assert body[field] == expected
    assert type(body[field]) is type(expected)
    # untouched parameters are absent
    others = {p.wire for p in PARAMS if p.name not in (name, "extra_body")} - {field}
    assert not (others & body.keys()), others & body.keys()
    assert set(body) - {field, "min_p"} == {"model", "messages", "stream", "stream_options"}


@pytest.mark.parametrize("name", sorted(COMPLETION_CASES))
async def test_a_set_completion_parameter_reaches_the_endpoint(owner, name):
    raw, field, expected = COMPLETION_CASES[name]
    conversation = await conversation_for(owner, mode="completion")
    await turn(owner, conversation, "Once upon a time", **{f"param:{name}": raw})
    request = last_request()
    assert request["path"] == "/v1/completions"
    body = request["json"]
    assert body[field] == expected and type(body[field]) is type(expected)
    extra = {"min_p"} if name == "extra_body" else set()
    if extra:
        assert body["min_p"] == 0.1
    # untouched parameters are absent
    assert set(body) - {field} - extra == {"model", "prompt", "stream", "stream_options"}
    assert body["prompt"] == "Once upon a time"
    prompt, completion = await messages_of(conversation)
    assert completion.status == "complete", completion.error


async def test_json_schema_and_top_logprobs_go_together_with_their_switches(owner):
    conversation = await conversation_for(owner)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    await turn(
        owner,
        conversation,
        **{
            "param:response_format": "json_schema",
            "param:json_schema": json.dumps({"name": "thing", "schema": schema, "strict": True}),
            "param:logprobs": "true",
            "param:top_logprobs": "3",
        },
    )
    body = last_request()["json"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    assert body["logprobs"] is True and body["top_logprobs"] == 3


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"param:temperature": "2.5"}, "at most 2"),
        ({"param:logit_bias": '{"abc": 1}'}, "not a whole number"),
        ({"param:logit_bias": '{"5": 500}'}, "from -100 to 100"),
        ({"param:logit_bias": "{nope"}, "not valid JSON"),
        ({"param:response_format": "json_schema", "param:json_schema": '{"type": 12}'},
         "not a valid JSON Schema"),
        ({"param:response_format": "json_schema"}, "needs a schema"),
        ({"param:top_logprobs": "3"}, "needs Log probabilities"),
        ({"param:extra_body": '{"temperature": 1}'}, "has its own control"),
        ({"param:extra_body": '{"messages": []}'}, "part of the request"),
        ({"param:stop": "a\nb\nc\nd\ne"}, "at most 4"),
    ],
)  # fmt: skip
async def test_a_malformed_parameter_is_refused_inline_and_nothing_is_sent(owner, fields, error):
    conversation = await conversation_for(owner)
    before = fake_app().requests.total
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps({"action": "send", "content": "Keep me", **fields}))
    frame = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert 'id="composer"' in frame and error in frame
    assert "Keep me" in frame  # the text stays in the composer
    assert fake_app().requests.total == before
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_quirks_rename_drop_and_change_the_system_role(owner):
    conversation = await conversation_for(
        owner,
        quirks={
            "max_tokens_field": "max_completion_tokens",
            "drop_params": ["temperature"],
            "system_role": "developer",
            "include_usage": False,
        },
    )
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(
        system_prompt="Be terse."
    )
    await turn(owner, conversation, **{"param:max_tokens": "20", "param:temperature": "0.3"})
    body = last_request()["json"]
    assert body["max_completion_tokens"] == 20 and "max_tokens" not in body
    assert "temperature" not in body and "stream_options" not in body
    assert body["messages"][0] == {"role": "developer", "content": "Be terse."}


async def test_an_endpoint_rejecting_stream_options_is_retried_once_and_remembered(owner):
    conversation = await conversation_for(owner)
    fake = fake_app()
    fake.config.supports_stream_options = False
    try:
        marker = f"Stream options, please ({uuid.uuid4()})"
        await turn(owner, conversation, text=marker)
        # This turn's requests, found by their text: the in-process fake's request log is
        # shared by the whole suite and capped, so positions in it are not stable.
        tries = [r for r in fake.requests if marker in json.dumps(r["json"] or {})]
    finally:
        fake.config.supports_stream_options = True
    assert len(tries) == 2
    assert "stream_options" in tries[0]["json"] and "stream_options" not in tries[1]["json"]
    _, answer = await messages_of(conversation)
    assert answer.status == "complete"
    assert "stream_options" not in answer.request_body  # the body really sent
    profile = await database_sync_to_async(EndpointProfile.objects.get)(owner=owner, is_demo=True)
    assert profile.quirks["include_usage"] is False


async def test_n_choices_stream_side_by_side_and_one_continues(owner, client):
    conversation = await conversation_for(owner)
    frames = await turn(owner, conversation, **{"param:n": "3"})
    assert any('id="t2-' in f for f in frames)  # the third choice streamed live
    _, answer = await messages_of(conversation)
    assert [c["index"] for c in answer.choices] == [0, 1, 2]
    assert all(c["finish_reason"] == "stop" and c["content"] for c in answer.choices)
    assert answer.content == answer.choices[0]["content"]
    assert len({c["content"] for c in answer.choices}) == 3

    await database_sync_to_async(client.force_login)(owner)
    url = f"/c/{conversation.pk}/m/{answer.pk}/choose/2/"
    response = await database_sync_to_async(client.post)(url)
    assert response.status_code == 200
    _, answer = await messages_of(conversation)
    assert answer.chosen == 2 and answer.content == answer.choices[2]["content"]
    # the next turn continues with choice 3
    await turn(owner, conversation, "And then?", **{"param:n": ""})
    history = last_request()["json"]["messages"]
    assert history[-2] == {"role": "assistant", "content": answer.choices[2]["content"]}


async def test_logprobs_are_kept_and_shown(owner, client):
    conversation = await conversation_for(owner)
    await turn(owner, conversation, **{"param:logprobs": "true", "param:top_logprobs": "2"})
    _, answer = await messages_of(conversation)
    assert answer.logprobs and all(len(t["top"]) == 2 for t in answer.logprobs)
    assert "".join(t["token"] for t in answer.logprobs) == answer.content
    await database_sync_to_async(client.force_login)(owner)
    page = (await database_sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
    assert "Token probabilities" in page and 'class="lp lp-' in page


async def test_completions_mode_streams_the_continuation_with_logprobs(owner):
    conversation = await conversation_for(owner, mode="completion")
    await turn(
        owner, conversation, "The capital of France is", **{"param:completion_logprobs": "2"}
    )
    prompt, completion = await messages_of(conversation)
    assert prompt.content == "The capital of France is"
    assert completion.status == "complete" and completion.content
    assert completion.logprobs and len(completion.logprobs[0]["top"]) == 2


class _ImageHost(BaseHTTPRequestHandler):
    """Serves a PNG to anyone who asks, and remembers who asked."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.end_headers()
        self.wfile.write(base64.b64decode(PNG))

    do_HEAD = do_POST = do_GET

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def image_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHost)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_images_go_as_content_parts_and_urls_are_not_fetched(owner, client, image_host):
    conversation = await conversation_for(owner)
    data_url = f"data:image/png;base64,{PNG}"
    image_url = f"http://127.0.0.1:{image_host.server_address[1]}/cat.png"
    await turn(owner, conversation, "What is this?", image_data=data_url, image_url=image_url)
    content = last_request()["json"]["messages"][-1]["content"]
    assert content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "image_url", "image_url": {"url": image_url}},
    ]
    user_message, answer = await messages_of(conversation)
    assert user_message.content_parts == content
    assert answer.status == "complete"
    # Showing the conversation, the inspector and the code export fetch nothing either,
    # and the page does not make the browser load it: a link, not an <img>.
    await database_sync_to_async(client.force_login)(owner)
    get = database_sync_to_async(client.get)
    page = (await get(f"/c/{conversation.pk}/")).content.decode()
    for view in ("inspect", "code"):
        assert (await get(f"/c/{conversation.pk}/m/{answer.pk}/{view}/")).status_code == 200
    assert f'src="{image_url}"' not in page and "127.0.0.1" in page
    assert image_host.hits == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"image_data": "data:image/svg+xml;base64,PHN2Zz4="}, "PNG, JPEG, GIF or WebP"),
        ({"image_data": "data:image/png;base64," + base64.b64encode(b"GIF89a").decode()},
         "not really a image/png"),
        ({"image_url": "javascript:alert(1)"}, "not an http(s) image URL"),
        ({"image_url": ["https://a.example/1.png"] * 5}, "At most 4 images"),
    ],
)  # fmt: skip
async def test_bad_images_are_refused_with_a_clear_message(owner, fields, error):
    conversation = await conversation_for(owner)
    comm = await connect(owner, conversation)
    await comm.send_to(text_data=json.dumps({"action": "send", "content": "Look", **fields}))
    frame = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert error in frame and "Look" in frame
    assert await database_sync_to_async(conversation.messages.count)() == 0


async def test_an_oversized_image_is_refused(owner, settings):
    settings.IMAGE_MAX_BYTES = 100
    conversation = await conversation_for(owner)
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200).decode()
    comm = await connect(owner, conversation)
    await comm.send_to(
        text_data=json.dumps(
            {"action": "send", "content": "Big", "image_data": f"data:image/png;base64,{big}"}
        )
    )
    frame = await comm.receive_from(timeout=60)
    await comm.disconnect()
    assert "the limit is" in frame


async def test_usage_details_and_cost_are_recorded(owner):
    conversation = await conversation_for(owner)

    @database_sync_to_async
    def price():
        EndpointProfile.objects.filter(owner=owner, is_demo=True).update(
            price_input=2, price_output=10
        )

    await price()
    await turn(owner, conversation)
    _, answer = await messages_of(conversation)
    usage = answer.usage
    expected = (usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 10) / 1_000_000
    assert answer.metrics["cost"] == pytest.approx(expected)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_the_inspector_keeps_the_raw_stream(owner):
    conversation = await conversation_for(owner)
    await turn(owner, conversation)
    _, answer = await messages_of(conversation)
    assert answer.raw_response[-1] == "[DONE]"
    chunks = [json.loads(line) for line in answer.raw_response[:-1]]
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices")
    )
    assert text == answer.content
    assert any(c.get("usage") for c in chunks)


async def test_params_saved_with_the_send_are_kept_on_the_lane(owner):
    conversation = await conversation_for(owner)
    await turn(owner, conversation, **{"param:temperature": "0.3", "param:seed": "7"})
    lane = await database_sync_to_async(conversation.lanes.get)()
    assert lane.params == {"temperature": 0.3, "seed": 7}
    assert (await messages_of(conversation))[1].request_body["seed"] == 7


THOUGHT = "First, light scatters off air molecules; shorter wavelengths scatter most."


def answer_article(page: str, message_id: int) -> str:
    start = page.index(f'<article id="m-{message_id}"')
    return page[start : page.index("</article>", start)]


@pytest.mark.parametrize(
    ("quirk", "sent_in", "kept"),
    [
        (None, "reasoning_content", True),  # no quirk saved: auto
        ("auto", "reasoning", True),
        ("reasoning", "reasoning", True),
        ("reasoning_content", "reasoning_content", True),
        # The endpoint is said to use the other field: this one is not reasoning.
        ("reasoning", "reasoning_content", False),
    ],
)
async def test_reasoning_is_kept_shown_collapsed_above_the_answer_and_counted(
    owner, client, quirk, sent_in, kept
):
    quirks = {} if quirk is None else {"reasoning_field": quirk}
    conversation = await conversation_for(owner, quirks=quirks)
    script = json.dumps({"reasoning": THOUGHT, "reasoning_field": sent_in, "tokens": 12})
    frames = await turn(owner, conversation, f"Why is the sky blue?\n@fake {script}")
    _, answer = await messages_of(conversation)
    assert answer.status == "complete" and answer.content
    assert THOUGHT not in answer.content
    # The fake counts reasoning in the usage whichever field carried it.
    assert answer.usage["reasoning_tokens"] == len(tokenize(THOUGHT))
    if not kept:
        assert answer.reasoning == "" and streamed_text(frames, "r") == ""
        return
    assert answer.reasoning == THOUGHT
    assert streamed_text(frames, "r") == THOUGHT  # streamed live, before the answer
    first_r = next(
        i for i, f in enumerate(frames) if f'id="r-{answer.pk}"' in f and THOUGHT[:5] in f
    )
    first_t = next(i for i, f in enumerate(frames) if re.search(rf'id="t-{answer.pk}"[^>]*>\S', f))
    assert first_r <= first_t

    await database_sync_to_async(client.force_login)(owner)
    page = (await database_sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
    for shown in (answer_article(page, answer.pk), frames[-1]):  # reload and live render
        details = re.search(r"<details class=\"reasoning\"([^>]*)>", shown)
        assert details, "no reasoning element"
        assert "open" not in details.group(1) and "hidden" not in details.group(1)
        assert html.escape(THOUGHT, quote=False) in shown
        assert shown.index('class="reasoning"') < shown.index('class="msg-body')
        assert re.search(rf"<dt>reasoning</dt><dd>{len(tokenize(THOUGHT))}</dd>", shown), (
            "reasoning tokens not in the usage"
        )


async def test_the_conversation_totals_add_up_every_answer_with_reasoning_and_cache(owner, client):
    conversation = await conversation_for(owner)
    await database_sync_to_async(EndpointProfile.objects.filter(owner=owner, is_demo=True).update)(
        price_input=3, price_output=15
    )
    first = json.dumps({"reasoning": THOUGHT, "cached_tokens": 4, "tokens": 10})
    await turn(owner, conversation, f"Tell me about the deep sea, please\n@fake {first}")
    frames = await turn(owner, conversation, 'And the shallow sea?\n@fake {"tokens": 7}')
    _, one, _, two = await messages_of(conversation)
    thinking = len(tokenize(THOUGHT))
    assert one.usage["reasoning_tokens"] == thinking and one.usage["cached_tokens"] == 4
    assert one.usage["completion_tokens"] == thinking + 10
    assert "reasoning_tokens" not in two.usage and "cached_tokens" not in two.usage
    prompt = one.usage["prompt_tokens"] + two.usage["prompt_tokens"]
    completion = one.usage["completion_tokens"] + two.usage["completion_tokens"]
    assert two.usage["prompt_tokens"] > one.usage["prompt_tokens"]  # the history is resent
    cost = (prompt * 3 + completion * 15) / 1_000_000
    assert one.metrics["cost"] + two.metrics["cost"] == pytest.approx(cost)

    expected = f"Σ {prompt} + {completion} tokens · {thinking} reasoning · 4 cached · ${cost:.4f}"
    # Live: the totals line is swapped in as the answer completes ...
    live = re.search(r'<span id="conv-totals"[^>]*hx-swap-oob="true"[^>]*>(.*?)</span>', frames[-1])
    assert live and live.group(1) == expected
    # ... and on reload; each answer shows its own figures.
    await database_sync_to_async(client.force_login)(owner)
    page = (await database_sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
    shown = re.search(r'<span id="conv-totals"[^>]*>(.*?)</span>', page)
    assert shown and shown.group(1) == expected
    first_answer = answer_article(page, one.pk)
    assert f"<dt>reasoning</dt><dd>{thinking}</dd>" in first_answer
    assert "<dt>cached</dt><dd>4</dd>" in first_answer
    assert "<dt>cached</dt>" not in answer_article(page, two.pk)
