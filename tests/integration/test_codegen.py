"""'Copy as code' (chat.codegen): the generated curl, Python and JavaScript really run.

Against the fake endpoint on a real port they must print the same answer the fake gives
for the same body; against a recording server they must send exactly the body and the
headers (from environment variables) that the run sent.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async

from chat import codegen, conversations
from chat.codegen import export_request
from chat.models import Conversation, EndpointProfile
from tests.integration.test_consumer import messages_of
from tests.integration.test_tools_flow import CALC, CALLS, WEATHER, send

CURL = shutil.which("curl")
NODE = shutil.which("node")
KEY = "sk-from-the-environment-1234"
ORG = "org-from-the-environment-5678"

# Every way a string could break out of a shell heredoc or a Python/JS literal.
HOSTILE = (
    "JSON\n\"double\" 'single' $HOME ${PATH} $(id) `id` \\ \\n \\u0041 <<EOF\nEOF\n"
    "ünïcödé ✨ 日本語 😀 \u202eevil\u202c zero\u200bwidth \u2028sep\u2029 tab\t del\x7f nul\x00"
    "\n'''\"\"\" }; process.exit(1); //"
)


def hostile_body(stream: bool = False) -> dict[str, Any]:
    return {
        "model": "demo-fast",
        "messages": [
            {"role": "system", "content": HOSTILE},
            {"role": "user", "content": "JSON"},
            {"role": "assistant", "content": "EOF"},
            {"role": "user", "content": "Say hi"},
        ],
        "temperature": 0.5,
        "stop": ["JSON", "\n"],
        "logit_bias": {"50256": -100},
        "top_k": 40,
        "repetition_penalty": 1.1,
        "min_p": 0.05,
        "vendor": {"nested": [1, 2.5, None, True, False, "x"], "empty": {}, "list": []},
        "stream": stream,
    }


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.pop("OPENAI_BASE_URL", None)
    return {**env, "NO_PROXY": "127.0.0.1,localhost", **extra}


def run(argv: list[str], tmp_path: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, timeout=60, text=True, check=False
    )
    assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def require(program: str | None, name: str, what: str) -> str:
    """The program's path; without it the test skips, loudly, or fails under CI=true
    (CI has node and curl: there, a missing one must not pass as a skipped test)."""
    if program is not None:
        return program
    reason = f"{name} is not on PATH: the generated {what} was NOT run"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


def run_program(language: str, code: str, tmp_path: Path, env: dict[str, str]) -> str:
    if language == "python":
        script = tmp_path / "request.py"
        script.write_text(code, encoding="utf-8")
        return run([sys.executable, str(script)], tmp_path, env)
    if language == "javascript":
        node = require(NODE, "node", "JavaScript")
        script = tmp_path / "request.js"
        script.write_text(code, encoding="utf-8")
        return run([node, str(script)], tmp_path, env)
    require(CURL, "curl", "curl command")
    return run(["bash", "-c", code], tmp_path, env)


# --------------------------------------------------------------------------- the fake


def chat_body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "demo-fast",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": 'How does a "lighthouse" work? ✨ $HOME `x`'},
        ],
        "temperature": 0.7,
        "max_tokens": 60,
        "stop": ["\n\n"],
        "seed": 7,
        "n": 2,
        "top_k": 40,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def completion_body(stream: bool) -> dict[str, Any]:
    return {
        "model": "demo-fast",
        "prompt": "Once upon a time",
        "temperature": 0.2,
        "max_tokens": 30,
        "stop": ["zzz"],
        "seed": 3,
        "n": 2,
        "top_k": 5,
        "stream": stream,
    }


def answer_of(obj: dict[str, Any], path: str) -> str:
    choice = obj["choices"][0]
    return choice["message"]["content"] if path == "chat/completions" else choice["text"]


def streamed_answer(sse_text: str, path: str) -> str:
    """Choice 0's text from the raw event stream curl printed."""
    parts = []
    for line in sse_text.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        for choice in json.loads(line[5:])["choices"]:
            if choice["index"] == 0:
                delta = choice.get("delta", {}) if path == "chat/completions" else choice
                parts.append(delta.get("content" if path == "chat/completions" else "text") or "")
    return "".join(parts)


@pytest.mark.parametrize("language", ["python", "curl", "javascript"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("path", ["chat/completions", "completions"])
def test_generated_code_prints_the_fakes_answer(
    fake_upstream_url: str, tmp_path: Path, language: str, stream: bool, path: str
) -> None:
    body = chat_body(stream) if path == "chat/completions" else completion_body(stream)
    expected_reply = httpx.post(
        f"{fake_upstream_url}/{path}",
        json={**{k: v for k, v in body.items() if k != "stream_options"}, "stream": False},
        timeout=30,
        trust_env=False,
    )
    expected_reply.raise_for_status()
    expected = answer_of(expected_reply.json(), path)
    assert len(expected) > 10
    # The second choice differs, so printing the wrong one would be noticed.
    assert expected_reply.json()["choices"][1] != expected_reply.json()["choices"][0]

    code = export_request(
        base_url=fake_upstream_url, path=path, body=body, header_names=["X-Org-Id"]
    )[language]
    output = run_program(language, code, tmp_path, clean_env(OPENAI_API_KEY="dummy", X_ORG_ID="o"))

    if language == "curl":
        answer = streamed_answer(output, path) if stream else answer_of(json.loads(output), path)
        assert answer == expected
        assert ("data: [DONE]" in output) is stream
    else:
        assert output == expected + "\n"


@pytest.mark.parametrize("language", ["python", "curl", "javascript"])
def test_generated_code_without_a_model_lets_the_endpoint_pick(
    fake_upstream_url: str, tmp_path: Path, language: str
) -> None:
    """A body without `model` (an endpoint with a default model): the code sends none,
    though the Python SDK requires the argument (it gets `omit`)."""
    base = fake_upstream_url.removesuffix("/v1") + "/default-model/v1"
    body = {k: v for k, v in chat_body(False).items() if k != "model"}
    expected_reply = httpx.post(f"{base}/chat/completions", json=body, timeout=30, trust_env=False)
    expected_reply.raise_for_status()
    expected = answer_of(expected_reply.json(), "chat/completions")
    code = export_request(base_url=base, path="chat/completions", body=body)[language]
    assert '"model"' not in code and "model=" not in code.replace("model=omit", "")
    output = run_program(language, code, tmp_path, clean_env(OPENAI_API_KEY="dummy"))
    if language == "curl":
        assert answer_of(json.loads(output), "chat/completions") == expected
    else:
        assert output == expected + "\n"


def responses_body(stream: bool) -> dict[str, Any]:
    return {
        "model": "demo-fast",
        "instructions": "You are terse.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": 'How does a "lighthouse" work? ✨ $HOME `x`'}
                ],
            }
        ],
        "temperature": 0.7,
        "max_output_tokens": 400,
        "text": {"format": {"type": "text"}},
        "top_k": 40,
        "stream": stream,
    }


def responses_text(obj: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in obj["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def streamed_responses_text(sse_text: str) -> str:
    deltas = []
    for line in sse_text.splitlines():
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if event["type"] == "response.output_text.delta":
                deltas.append(event["delta"])
    return "".join(deltas)


@pytest.mark.parametrize("language", ["python", "curl", "javascript"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_generated_responses_api_code_prints_the_fakes_answer(
    fake_upstream_url: str, tmp_path: Path, language: str, stream: bool
) -> None:
    """A Responses API request as code: client.responses.create in Python (top_k, not
    one of its arguments, through extra_body), fetch in JavaScript, curl; each prints
    the answer the fake gives that body."""
    body = responses_body(stream)
    reply = httpx.post(
        f"{fake_upstream_url}/responses", json={**body, "stream": False}, timeout=30,
        trust_env=False,
    )  # fmt: skip
    reply.raise_for_status()
    expected = responses_text(reply.json())
    assert len(expected) > 10
    code = export_request(base_url=fake_upstream_url, path="responses", body=body)[language]
    if language == "python":
        assert "client.responses.create(" in code and "extra_body={" in code
    output = run_program(language, code, tmp_path, clean_env(OPENAI_API_KEY="dummy"))
    if language == "curl":
        got = streamed_responses_text(output) if stream else responses_text(json.loads(output))
        assert got == expected
        assert ("event: response.completed" in output) is stream
    else:
        assert output == expected + "\n"


# --------------------------------------------------------------------------- a saved answer

PRE = re.compile(r"<pre>(.*?)</pre>", re.S)


@pytest.mark.django_db(transaction=True)
async def test_the_export_of_a_saved_tool_results_answer_runs_against_the_fake(
    fake_upstream_url: str, tmp_path: Path, owner, client
) -> None:
    """Tools, the model's calls and the results, from a real conversation: what *Code*
    shows for the final answer reproduces it, in every language."""
    profile = await database_sync_to_async(EndpointProfile.objects.create)(
        owner=owner, name="Local fake", base_url=fake_upstream_url
    )

    @database_sync_to_async
    def setup() -> Conversation:
        profile.api_key = "sk-local-fake-key-0001"
        profile.extra_headers = {"X-Org-Id": "org-local-0001"}
        profile.save()
        conversation = conversations.conversation_create(
            owner=owner, profile=profile, model="demo-fast"
        )
        conversation.tools = [
            {"tool": WEATHER, "enabled": True, "mock": ""},
            {"tool": CALC, "enabled": True, "mock": ""},
        ]
        conversation.save()
        return conversation

    conversation = await setup()
    script = json.dumps({"tool_calls": CALLS})
    await send(owner, conversation, {"action": "send", "content": f"Both?\n@fake {script}"})
    _, calls = await messages_of(conversation)
    ids = [c["id"] for c in calls.tool_calls]
    results = {
        f"result:{ids[0]}": '{"temp": 18, "sky": "grey \'n\' $HOME"}',
        f"result:{ids[1]}": "14",
    }
    await send(owner, conversation, {"action": "tool_results", "message": calls.pk, **results})
    *_, answer = await messages_of(conversation)
    assert answer.status == "complete" and "14" in answer.content
    body = answer.request_body
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "calculate"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool"]
    assert body["messages"][1]["tool_calls"] == calls.tool_calls and body["stream"] is True

    await database_sync_to_async(client.force_login)(owner)
    page = await database_sync_to_async(client.get)(f"/c/{conversation.pk}/m/{answer.pk}/code/")
    # What the copy buttons copy: the text of each block.
    curl, python, javascript = (html.unescape(p) for p in PRE.findall(page.content.decode()))
    assert "sk-local-fake-key-0001" not in page.content.decode()
    sent = curl.split("<<'JSON'\n", 1)[1].rsplit("\nJSON\n", 1)[0]
    assert json.loads(sent) == body  # the saved body, unchanged

    env = clean_env(OPENAI_API_KEY="sk-anything", X_ORG_ID="org")
    for language, code in (("python", python), ("curl", curl), ("javascript", javascript)):
        output = await asyncio.to_thread(run_program, language, code, tmp_path, env)
        if language == "curl":
            assert streamed_answer(output, "chat/completions") == answer.content
        else:
            assert output == answer.content + "\n", language


# --------------------------------------------------------------------------- what is sent


class _Recorder(BaseHTTPRequestHandler):
    """Records each POST and answers with a minimal completion ("ok")."""

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.loads(data)
        self.server.seen.append(  # type: ignore[attr-defined]
            {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        head = {"id": "x", "created": 0, "model": "m"}
        if body.get("stream"):
            chunk = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}],
            }
            payload = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            content_type = "text/event-stream"
        else:
            message = {"role": "assistant", "content": "ok"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            payload = json.dumps({**head, "object": "chat.completion", "choices": [choice]})
            payload = payload.encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("language", ["python", "curl", "javascript"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_generated_code_sends_the_exact_body_and_headers_from_the_environment(
    recorder: ThreadingHTTPServer, tmp_path: Path, language: str, stream: bool
) -> None:
    port = recorder.server_address[1]
    body = hostile_body(stream)
    base = f"http://127.0.0.1:{port}/v1/?api-version=2024-10-21"
    code = export_request(
        base_url=base,
        path="chat/completions",
        body=body,
        header_names=["X-Org-Id", "HTTP-Referer"],
    )[language]
    seen: list[dict[str, Any]] = recorder.seen  # type: ignore[attr-defined]
    seen.clear()
    env = clean_env(OPENAI_API_KEY=KEY, X_ORG_ID=ORG, HTTP_REFERER="https://me.example")
    output = run_program(language, code, tmp_path, env)

    [request] = seen
    assert request["body"] == body
    assert request["path"] == "/v1/chat/completions?api-version=2024-10-21"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-org-id"] == ORG
    assert headers["http-referer"] == "https://me.example"
    assert headers["content-type"].startswith("application/json")
    if language != "curl":
        assert output == "ok\n"


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize("language", ["javascript", "curl"])
@pytest.mark.parametrize("ci", ["true", ""], ids=["CI", "local"])
def test_a_missing_node_or_curl_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: str, ci: str
) -> None:
    monkeypatch.setitem(globals(), "NODE" if language == "javascript" else "CURL", None)
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="is not on PATH"):
        run_program(language, "echo never", tmp_path, clean_env())


def test_no_secret_is_ever_in_the_code() -> None:
    out = export_request(
        base_url="https://api.example.test/v1",
        path="chat/completions",
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        header_names=["X-Org-Id", "api-key"],
        api_key_env="MY_KEY",
    )
    assert set(out) == {"curl", "python", "javascript"}
    assert '-H "Authorization: Bearer $MY_KEY"' in out["curl"]
    assert '-H "X-Org-Id: $X_ORG_ID"' in out["curl"]
    assert '-H "api-key: $API_KEY"' in out["curl"]
    assert 'api_key=os.environ["MY_KEY"]' in out["python"]
    assert '"X-Org-Id": os.environ["X_ORG_ID"]' in out["python"]
    assert "`Bearer ${process.env.MY_KEY}`" in out["javascript"]
    assert '"api-key": process.env.API_KEY' in out["javascript"]
    for code in out.values():
        assert "sk-" not in code
        assert "OPENAI_API_KEY" not in code


def test_the_body_is_embedded_verbatim_in_every_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = hostile_body()
    body["messages"].append({"role": "user", "content": "lone \ud800 surrogate, tag \U000e0041"})
    out = export_request(base_url="http://h.test/v1", path="chat/completions", body=body)

    # curl: the heredoc hands the JSON to curl byte for byte (curl stubbed by cat).
    assert "<<'JSON'\n" in out["curl"]
    sent = run(["bash", "-c", "curl() { cat; }\n" + out["curl"]], tmp_path, clean_env())
    assert json.loads(sent) == body

    # Python: the SDK is stubbed; named arguments plus extra_body are the body.
    calls: dict[str, Any] = {}

    class Completions:
        def create(self, **kwargs: Any) -> Any:
            calls["create"] = kwargs
            message = types.SimpleNamespace(content="")
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)])

    class OpenAI:
        def __init__(self, **kwargs: Any) -> None:
            calls["client"] = kwargs
            self.chat = types.SimpleNamespace(completions=Completions())

    compile(out["python"], "request.py", "exec")
    stub = types.ModuleType("openai")
    stub.OpenAI = OpenAI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openai", stub)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    exec(out["python"], {"__name__": "__main__"})
    kwargs = dict(calls["create"])
    extra = kwargs.pop("extra_body")
    assert set(extra) == {"top_k", "repetition_penalty", "min_p", "vendor"}
    assert {**kwargs, **extra} == body
    assert list(kwargs) == ["model", "messages", "temperature", "stop", "logit_bias", "stream"]
    assert calls["client"]["base_url"] == "http://h.test/v1"

    # JavaScript: fetch stubbed, the body it would send is printed.
    stubbed = (
        "globalThis.fetch = async (url, init) => {\n"
        "  console.log(init.body);\n"
        "  return { ok: true, json: async () => ({ choices: [{ message: { content: '' } }] }) };\n"
        "};\n" + out["javascript"]
    )
    printed = run_program("javascript", stubbed, tmp_path, clean_env(OPENAI_API_KEY="k"))
    assert json.loads(printed.split("\n")[0]) == body  # (splitlines would cut at U+2028)


def test_pretty_json_keeps_key_order_and_escapes_only_what_it_must() -> None:
    body = {"z": 1, "a": {"y": [], "b": {}}, "text": "naïve ✨ \u202e"}
    curl = export_request(base_url="http://h.test/v1", path="chat/completions", body=body)["curl"]
    payload = curl.split("<<'JSON'\n", 1)[1].rsplit("\nJSON\n", 1)[0]
    assert payload == json.dumps(body, indent=2, ensure_ascii=False).replace("\u202e", "\\u202e")
    assert "\u202e" not in curl  # a bidi override would make the shown code lie


def test_heredoc_delimiter_never_collides(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretty JSON cannot hold a line that is just "JSON"; pretend it could.
    body = {"model": "m", "prompt": "x"}
    payload = json.dumps(body, indent=2)
    monkeypatch.setattr(codegen, "_json_text", lambda _body: payload + "\nJSON")
    curl = export_request(base_url="http://h.test", path="completions", body=body)["curl"]
    assert "<<'JSON_1'\n" in curl and curl.endswith("\nJSON_1\n")


def test_completions_path_and_named_arguments() -> None:
    body = {"model": "m", "prompt": "p", "echo": True, "suffix": "s", "top_k": 3, "stream": True}
    out = export_request(base_url="http://h.test/v1/", path="/completions", body=body)
    assert "client.completions.create(" in out["python"]
    assert "echo=True," in out["python"] and 'suffix="s",' in out["python"]
    assert 'extra_body={"top_k": 3},' in out["python"]
    assert "choice.text" in out["python"]
    assert "http://h.test/v1/completions" in out["curl"]
    assert "choice.text" in out["javascript"]


def test_without_the_sdk_a_standard_list_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sdk(name: str) -> Any:
        raise ImportError(name)

    codegen._accepted_params.cache_clear()
    monkeypatch.setattr(codegen.importlib, "import_module", no_sdk)
    try:
        body = {"model": "m", "messages": [], "temperature": 1, "min_p": 0.1, "timeout": 5}
        python = export_request(base_url="http://h", path="chat/completions", body=body)["python"]
    finally:
        codegen._accepted_params.cache_clear()
    # "timeout" is an SDK control, so as a body key it is a provider parameter.
    assert 'extra_body={"min_p": 0.1, "timeout": 5},' in python
    assert "temperature=1," in python


def test_custom_authorization_header_replaces_the_bearer_key() -> None:
    out = export_request(
        base_url="http://h/v1", path="chat/completions", body={}, header_names=["Authorization"]
    )
    assert "Bearer" not in out["curl"] and '-H "Authorization: $AUTHORIZATION"' in out["curl"]
    assert 'api_key="unused"' in out["python"]
    assert "Bearer" not in out["javascript"]


def test_odd_header_names_are_quoted_and_bad_ones_refused() -> None:
    out = export_request(
        base_url="http://h/v1",
        path="chat/completions",
        body={},
        header_names=["X-A!b$c`", "x-org", "X-Org", "X.Org"],
    )
    assert "-H 'X-A!b$c`: '\"$X_A_B_C\"" in out["curl"]
    assert '-H "x-org: $X_ORG"' in out["curl"] and "X-Org:" not in out["curl"]
    assert '-H "X.Org: $X_ORG_2"' in out["curl"]
    with pytest.raises(ValueError, match="header name"):
        export_request(base_url="http://h", path="completions", body={}, header_names=["a b"])
    with pytest.raises(ValueError, match="environment variable"):
        export_request(base_url="http://h", path="completions", body={}, api_key_env="A-B")
    with pytest.raises(ValueError, match="cannot export"):
        export_request(base_url="http://h", path="embeddings", body={})
