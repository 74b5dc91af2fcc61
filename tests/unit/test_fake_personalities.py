"""The fake endpoint's personalities (``http://fake.invalid/<name>/v1``) and the behaviour
the compatibility probes rely on: structured output, refused roles, images, parameters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import jsonschema
import pytest

from chat.fake_upstream import PERSONALITIES, FakeConfig
from chat.upstream import Endpoint, UpstreamFailure, aclose_client, chat_once, fake_app, list_models


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await aclose_client()


def endpoint(name: str | None = None) -> Endpoint:
    return Endpoint(f"http://fake.invalid/{name}/v1" if name else "http://fake.invalid/v1")


def body(content: object = "Hello", **extra: object) -> dict:
    return {"model": "demo-fast", "messages": [{"role": "user", "content": content}], **extra}


async def refusal(name: str | None, request: dict) -> str:
    with pytest.raises(UpstreamFailure) as caught:
        await chat_once(endpoint(name), request)
    assert caught.value.error.status == 400
    return caught.value.error.message


async def test_each_personality_is_served_under_its_prefix_and_logged_with_the_rest():
    fake_app().requests.clear()
    for name in PERSONALITIES:
        assert await list_models(endpoint(name)) == ["demo", "demo-fast", "demo-slow"]
    assert [r["path"] for r in fake_app().requests] == ["/v1/models"] * len(PERSONALITIES)
    with pytest.raises(UpstreamFailure) as caught:
        await list_models(endpoint("no-such-personality"))
    assert caught.value.error.status == 404


async def test_the_switches_refuse_what_the_server_lacks():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    image = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    developer = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert "tools" in await refusal("no-tools", body(tools=tools))
    assert "Image input" in await refusal("no-images", body(image))
    assert "developer" in await refusal("system-only", {**body(), "messages": developer})
    assert "system" in await refusal("reasoning", {**body(), "messages": system})
    assert "logprobs" in await refusal("reasoning", body(logprobs=True))
    assert "max_tokens" in await refusal("reasoning", body(max_tokens=4))
    # ...and the default server takes all of them.
    for request in (
        body(tools=tools), body(image), {**body(), "messages": developer},
        {**body(), "messages": system}, body(logprobs=True), body(max_tokens=4),
    ):  # fmt: skip
        assert (await chat_once(endpoint(), request))["choices"]


@pytest.mark.parametrize("name", [None, "full"])
async def test_response_format_gets_json_and_a_schema_gets_a_valid_instance(name):
    answer = await chat_once(endpoint(name), body(response_format={"type": "json_object"}))
    assert isinstance(json.loads(answer["choices"][0]["message"]["content"]), dict)
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"enum": ["low", "high"]},
            "ok": {"type": "boolean"},
            "size": {"type": "number"},
        },
        "required": ["name", "tags", "level", "ok", "size"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    answer = await chat_once(
        endpoint(name), body("Describe Paris", response_format=response_format)
    )
    jsonschema.validate(json.loads(answer["choices"][0]["message"]["content"]), schema)
    plain = await chat_once(endpoint(name), body("Describe Paris"))
    with pytest.raises(ValueError):
        json.loads(plain["choices"][0]["message"]["content"])


async def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    async def text(seed: int) -> str:
        answer = await chat_once(endpoint("full"), body("Tell me about rivers", seed=seed))
        return answer["choices"][0]["message"]["content"]

    assert await text(1) == await text(1)
    assert await text(1) != await text(2)


def test_personalities_differ_from_the_default_in_what_their_name_says():
    default = FakeConfig()
    assert PERSONALITIES["full"] == default
    assert PERSONALITIES["no-stream-options"].supports_stream_options is False
    assert PERSONALITIES["max-completion-tokens"].max_tokens_field == "max_completion_tokens"
    assert PERSONALITIES["plain-errors"].error_shape == "plain"
    assert PERSONALITIES["tool-index-missing"].tool_style == "no_index"


async def test_the_default_model_personality_answers_a_request_without_a_model():
    request = {"messages": [{"role": "user", "content": "Hi"}]}
    assert "model parameter" in await refusal(None, request)  # as OpenAI does
    answer = await chat_once(endpoint("default-model"), request)
    assert answer["model"] == "demo-fast"  # and says which model answered
    assert answer["choices"][0]["message"]["content"]
