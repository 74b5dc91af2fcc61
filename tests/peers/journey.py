"""What a new user does in Chromium, step by step, shared by the journeys on each server."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat_flow import answers

from .truth import Truth

# A real model on a shared 2-core machine: generous, but bounded.
ANSWER_TIMEOUT = 180_000
COMPAT_TIMEOUT = 420_000
USAGE = re.compile(r"tokens\s*(\d+) \+ (\d+) = (\d+)")


def add_endpoint(page: Page, base: str, *, name: str, url: str, api_key: str = "") -> None:
    page.goto(base + "/endpoints/new/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Base URL").fill(url)
    if api_key:
        page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name=name).wait_for()


def fetch_models(page: Page, models: list[str]) -> None:
    page.get_by_role("button", name="Fetch models").click()
    result = page.locator("#endpoint-result")
    result.get_by_text(f"{len(models)} model").wait_for()
    shown = result.inner_text()
    assert all(m in shown for m in models), shown


def open_new_conversation(page: Page, base: str, endpoint: str) -> None:
    page.goto(base + "/endpoints/")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("heading", name="New conversation").wait_for()
    page.get_by_label("Endpoint").select_option(label=endpoint)


def model_follows(page: Page, model: str, others: list[str]) -> None:
    """After picking the endpoint, the Model field holds its model and suggests its list
    (issue 12, defect 1); within the suite's standard wait, WAIT_MS, like every expect()."""
    expect(page.get_by_label("Model")).to_have_value(model)
    suggested = page.locator("#model-list option").evaluate_all("os => os.map(o => o.value)")
    assert set(others) <= set(suggested), suggested


def set_model(page: Page, model: str, lane: int = 0, label: str = "Model") -> None:
    """Type ``model`` into a lane's Model field; it saves on change."""
    field = page.get_by_label(label, exact=True)
    if field.input_value() == model:
        return
    field.fill(model)
    field.press("Tab")
    page.locator(".lane-head").nth(lane).locator(".save-state").get_by_text("Saved").wait_for()


def set_api(page: Page, api: str, lane: int = 0, label: str = "API") -> None:
    """Pick a lane's wire API ("chat" or "responses"); it saves on change."""
    page.get_by_label(label, exact=True).select_option(api)
    page.locator(".lane-head").nth(lane).locator(".save-state").get_by_text("Saved").wait_for()


def panel_lane(page: Page, label: str) -> None:
    """Show lane ``label``'s parameters in the panel (a comparison's "Lane" picker)."""
    with page.expect_response(lambda r: "/params/panel/" in r.url and r.ok):
        page.locator("#panel-lane-select").select_option(label=label)


def set_param(page: Page, name: str, value: object) -> None:
    """Set one field of the parameter panel and wait until it is saved (an unchanged
    value posts nothing: nothing to wait for)."""
    if page.locator(f"#param-{name}").input_value() == str(value):
        return
    with page.expect_response(lambda r: r.url.endswith("/params/") and r.ok):
        page.locator(f"#param-{name}").fill(str(value))
        page.locator(f"#param-{name}").press("Tab")


def set_max_tokens(page: Page, value: int) -> None:
    """Move Max tokens in the parameter panel (a CPU server writes ~10-20 tokens a second)."""
    set_param(page, "max_tokens", value)


# llama-server's greedy decoding, from the panel: temperature 0 and top_k 1 take the most
# likely token every time (the seed then changes nothing, but is fixed anyway), and no
# prompt cache (its reuse evaluates a prompt in other batch sizes, which llama.cpp says may
# change the logits' last bits). One request at a time, the same conversation then gets the
# same answer every time.
GREEDY_EXTRA = '{"top_k": 1, "cache_prompt": false}'


def set_greedy(page: Page) -> None:
    set_param(page, "temperature", 0)
    set_param(page, "seed", 1)
    set_param(page, "extra_body", GREEDY_EXTRA)


def send(page: Page, text: str, number: int, *, status: str = "complete") -> str:
    """Send ``text`` as turn ``number`` (1-based) and wait for its answer; its text."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    answer = answers(page).nth(number - 1)
    answer.and_(page.locator(f'[data-status="{status}"]')).wait_for(timeout=ANSWER_TIMEOUT)
    return "".join(answer.locator(".msg-body").all_inner_texts())  # none: only tool calls


def usage_of(page: Page, number: int) -> tuple[int, int, int]:
    """prompt + completion = total as the answer's metrics show them."""
    metrics = answers(page).nth(number - 1).locator(".metrics").inner_text()
    found = USAGE.search(" ".join(metrics.split()))
    assert found, metrics
    prompt, completion, total = map(int, found.groups())
    assert prompt > 0 and completion > 0 and total == prompt + completion, metrics
    return prompt, completion, total


def run_compat(page: Page, base: str, endpoint: str, model: str) -> dict[str, tuple[str, str]]:
    """Check ``model`` from the endpoint's page; each row's (status, text) by key."""
    page.goto(base + "/endpoints/")
    page.get_by_role("link", name=endpoint).first.click()
    page.get_by_role("heading", name=endpoint).wait_for()
    compat = page.locator("#compat")
    compat.get_by_label("Model to check").fill(model)
    compat.get_by_role("button", name=re.compile("^Check (compatibility|again)$")).click()
    page.locator('#compat[data-state="running"]').wait_for()
    page.locator('#compat[data-state="done"]').wait_for(timeout=COMPAT_TIMEOUT)
    assert f"against {model}" in compat.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"peers-compat-{model}.png"), full_page=True)
    rows = {}
    for row in compat.locator("tr.compat-row").all():
        rows[row.get_attribute("data-key")] = (row.get_attribute("data-status"), row.inner_text())
    (ARTIFACTS / "peers").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "peers" / f"compat-{model}.json").write_text(json.dumps(rows, indent=1))
    return rows


def verdicts_agree(
    rows: dict[str, tuple[str, str]], truths: dict[str, Truth], log: list[str] | None = None
) -> list[str]:
    """Every row whose verdict differs from what the server really does, explained.

    "Could not tell" because the probe's own answer was cut by its token limit, or did not
    come in time on a slow machine, is no false claim (the row says so): it is accepted for
    any truth, and printed. So is a stop row that could not tell because the server's own
    answer without stop had no comma either (nothing to stop: a fact of that sample), and a
    seed that changed the text only when requests ran at once: a difference seen is proof,
    and the oracle does not try requests at once (see ``truth_seed``)."""
    # A row without a truth would go unchecked, a truth without a row is a stale one.
    assert set(rows) == set(truths), (
        f"rows without a truth: {sorted(set(rows) - set(truths))}; "
        f"truths without a row: {sorted(set(truths) - set(rows))}"
    )
    wrong = []
    for key, (truth, why) in truths.items():
        status, text = rows[key]
        allowed = {truth} if isinstance(truth, str) else set(truth)
        if "token limit" in text or "No complete answer within" in text:
            allowed.add("inconclusive")
        if key == "stop" and "nothing to stop" in text:
            allowed.add("inconclusive")
        if key == "seed" and "at once" in text:
            # Another text for the same seed when requests ran at once (llama.cpp batches
            # them) is a fact the report saw; the oracle checks the seed one request at a
            # time only: which requests share a batch is a matter of timing.
            allowed.add("different")
        if status not in allowed:
            summary = " ".join(text.split())[:160]
            wrong.append(
                f"{key}: the report says {status} ({summary}); the server: {truth} ({why})"
            )
        if log is not None:
            summary = " ".join(text.split()[1:])[:200]
            log.append(f"{key}\treport: {status} ({summary})\tserver: {sorted(allowed)} ({why})")
    return wrong


def assert_verdicts_agree(
    rows: dict[str, tuple[str, str]], truths: dict[str, Truth], name: str
) -> None:
    """Every verdict agrees with what the server does; the row-by-row table is kept in
    test-artifacts/peers/verdicts-<name>.tsv."""
    log: list[str] = []
    wrong = verdicts_agree(rows, truths, log)
    (ARTIFACTS / "peers").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "peers" / f"verdicts-{name}.tsv").write_text("\n".join(log) + "\n")
    assert not wrong, "\n".join(["verdicts that disagree with the server:", *wrong])
