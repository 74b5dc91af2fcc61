"""The one redaction object (chat.upstream.secrets.Secrets): whole strings, decoded JSON,
errors, typed events and raw lines, compared on what the JSON means, not how it is spelt."""

from __future__ import annotations

import json

from chat.upstream import REDACTED, Endpoint, Secrets
from chat.upstream.events import Finish, TextDelta, ToolCallDelta, UpstreamError, Usage

KEY = "sk-live-0123456789abcdef"
ORG = "org-hdr-value"
SECRETS = Secrets([KEY, ORG, "abc", None, ""])  # under 4 characters: never looked for


def test_it_is_built_once_per_endpoint_from_the_key_and_header_values():
    endpoint = Endpoint("http://x/v1", api_key=KEY, headers={"X-Org": ORG})
    assert endpoint.secrets is endpoint.secrets
    assert endpoint.secrets.values == (KEY, ORG)
    assert KEY not in repr(endpoint.secrets) and not Secrets()


def test_whole_strings_and_every_string_of_a_json_value():
    assert SECRETS.text(f"a {KEY} b\x00") == f"a {REDACTED} b\ufffd"
    assert SECRETS.text(None) is None and SECRETS.text("abc") == "abc"
    value = {"model": KEY, KEY: [1, {"id": f"x{ORG}"}], "n": 2}
    redacted = {"model": REDACTED, REDACTED: [1, {"id": f"x{REDACTED}"}], "n": 2}
    assert SECRETS.value(value) == redacted


def test_every_field_of_an_error_and_of_an_event():
    error = UpstreamError(message=KEY, type=KEY, code=ORG, param=f"p{ORG}", body=KEY)
    assert SECRETS.error(error).as_dict() == {
        "message": REDACTED, "status": None, "type": REDACTED, "code": REDACTED,
        "param": f"p{REDACTED}", "body": REDACTED,
    }  # fmt: skip
    call = SECRETS.event(ToolCallDelta(0, id=KEY, name=ORG, arguments=KEY))
    assert (call.id, call.name) == (REDACTED, REDACTED)
    assert call.arguments == KEY  # pieces: a SecretStream sees across deltas
    assert SECRETS.event(Finish(KEY)).reason == REDACTED
    assert SECRETS.event(Usage(raw={"note": KEY})).raw == {"note": REDACTED}
    assert SECRETS.event(TextDelta("a\x00")).text == "a\ufffd"


def test_a_raw_line_is_compared_decoded_whatever_its_escapes():
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
    line = '{"model": "' + escaped + '", "choices": [], "x": "caf\\u00e9"}'
    assert KEY not in line
    cleaned = SECRETS.raw(line)
    assert json.loads(cleaned) == {"model": REDACTED, "choices": [], "x": "café"}
    plain = '{"model": "m1", "x": "caf\\u00e9"}'
    assert SECRETS.raw(plain) == plain  # nothing to redact: kept as it was spelt
    assert SECRETS.raw(f"<p>{KEY}</p>") == f"<p>{REDACTED}</p>"  # not JSON: as text
    assert SECRETS.raw("[DONE]") == "[DONE]"
    slashed = Secrets(["tok/en-value"]).raw('{"x": "tok\\/en-value"}')
    assert json.loads(slashed) == {"x": REDACTED}


def test_redaction_lives_in_one_module_that_imports_nothing_of_the_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "chat"
    spelled = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "fake_upstream" not in path.parts and '"[redacted]"' in path.read_text()
    ]
    assert spelled == ["upstream/secrets.py"]
    for path in (root / "upstream").glob("*.py"):
        assert "chat.runs" not in path.read_text(), path  # imports go runs -> upstream
