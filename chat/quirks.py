"""The one table of endpoint quirks: what an endpoint wants unlike the OpenAI API.

A profile keeps them as a JSON object (``EndpointProfile.quirks``). The endpoint form, the
compatibility report's suggestions, the request body and the upstream ``Endpoint`` all
read QUIRKS; adding a quirk is one row. Read a value with ``quirk(quirks, name)`` (or
``profile.quirk(name)``): a quirk the object lacks, or holds in the wrong shape, has the
table's default, which is written nowhere else.

One quirk is also learned while answering: a run whose ``stream_options`` is refused
asks again without it and saves ``include_usage: false`` (``chat.runs.store``).

A low layer: it imports nothing of the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

CHOICE = "choice"  # one of ``choices``: a non-empty string
BOOL = "bool"
NAMES = "names"  # parameter names: a tuple of strings, typed as a comma-separated list


class NamesField(forms.CharField):
    """Comma-separated parameter names, cleaned to a list."""

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if not n.replace("_", "").isalnum()]
        if bad:
            raise forms.ValidationError(f"Not a parameter name: {', '.join(bad)}")
        return names


@dataclass(frozen=True, slots=True)
class Quirk:
    name: str  # the key in profile.quirks
    kind: str  # choice | bool | names
    default: Any  # what the endpoint gets when nothing (or nothing usable) is stored
    label: str  # the form's label
    help: str  # the form's help text
    choices: tuple[tuple[str, str], ...] = ()  # a choice's (value, shown), the default first
    short: str = ""  # the compatibility report's name for it, when shorter than the label
    # False: saved only when it differs from the default (the key is absent otherwise).
    saved_when_default: bool = True

    @property
    def field_name(self) -> str:
        """The endpoint form's field."""
        return f"quirk_{self.name}"

    @property
    def title(self) -> str:
        return self.short or self.label

    def read(self, raw: Any) -> Any:
        """A stored value as this quirk's type; the default when unset or malformed."""
        if raw is None:
            return self.default
        if self.kind == BOOL:
            return bool(raw)
        if self.kind == NAMES:
            if not isinstance(raw, list | tuple):
                return self.default
            return tuple(n for n in raw if isinstance(n, str))
        # A choice: any non-empty string is kept (what the endpoint is sent), not only
        # the form's choices.
        return raw if isinstance(raw, str) and raw else self.default

    def stored(self, value: Any) -> Any:
        """What the profile's JSON keeps for ``value`` (a form's cleaned value)."""
        value = self.read(value)
        return list(value) if self.kind == NAMES else value

    def other(self, value: str) -> str:
        """The first choice that is not ``value`` (for a quirk of two choices, the other)."""
        return next(v for v, _ in self.choices if v != value)

    def form_field(self) -> forms.Field:
        common: dict[str, Any] = {"label": self.label, "required": False, "help_text": self.help}
        if self.kind == CHOICE:
            return forms.ChoiceField(choices=list(self.choices), initial=self.default, **common)
        if self.kind == BOOL:
            return forms.BooleanField(initial=self.default, **common)
        if self.kind == NAMES:
            return NamesField(**common)
        raise ValueError(f"unknown quirk kind {self.kind}")  # pragma: no cover - table bug

    def form_initial(self, value: Any) -> Any:
        """The form field's value for ``value`` (as ``read`` returns it)."""
        return ", ".join(value) if self.kind == NAMES else value


QUIRKS: tuple[Quirk, ...] = (
    Quirk("max_tokens_field", CHOICE, "max_tokens", "Max tokens field",
          "OpenAI's reasoning models want max_completion_tokens.",
          choices=(("max_tokens", "max_tokens"),
                   ("max_completion_tokens", "max_completion_tokens"))),
    Quirk("include_usage", BOOL, True,
          "Ask for usage while streaming (stream_options.include_usage)",
          "Switched off automatically when the endpoint rejects it.",
          short="Ask for usage while streaming"),
    Quirk("system_role", CHOICE, "system", "System prompt role",
          "OpenAI's reasoning models want developer; some other endpoints accept only "
          "system.",
          choices=(("system", "system"), ("developer", "developer"))),
    Quirk("model_optional", BOOL, False,
          "Requests may omit the model (the endpoint picks its own)",
          "It answers requests that name no model: e.g. a llama.cpp server serving one "
          "model, or a gateway with a default route. Then a conversation's Model may be "
          "left blank: no model is sent and the endpoint picks it.",
          saved_when_default=False),  # most endpoints need a model
    Quirk("drop_params", NAMES, (), "Never send",
          "Comma-separated parameters this endpoint rejects, e.g. temperature, top_p for "
          "some reasoning models."),
    Quirk("reasoning_field", CHOICE, "auto", "Reasoning text arrives in",
          "The delta field read as the model's reasoning, shown collapsed above the answer. "
          "Pick one when the endpoint uses the other field for something else.",
          choices=(("auto", "either (reasoning_content, else reasoning)"),
                   ("reasoning_content", "reasoning_content only (e.g. DeepSeek)"),
                   ("reasoning", "reasoning only (e.g. OpenRouter)"))),
    Quirk("default_api", CHOICE, "chat", "New lanes use",
          "The wire API a new lane on this endpoint speaks; each lane can switch.",
          choices=(("chat", "Chat Completions (/chat/completions)"),
                   ("responses", "Responses (/responses)"))),
    Quirk("responses", BOOL, True, "Serves the Responses API (/responses)",
          "Off for an endpoint that answers only Chat Completions: its lanes cannot be "
          "switched to Responses.", short="Responses API served"),
    Quirk("responses_system", CHOICE, "instructions", "Responses: system prompt as",
          "Where a Responses request carries the system prompt.",
          choices=(("instructions", "instructions"),
                   ("message", "a system/developer message in input (System prompt role)"))),
)  # fmt: skip

BY_NAME = {q.name: q for q in QUIRKS}


def quirk(quirks: dict[str, Any] | None, name: str) -> Any:
    """Quirk ``name`` of a profile's ``quirks`` object: the stored value, else the table's
    default. An unknown name is a KeyError."""
    return BY_NAME[name].read((quirks or {}).get(name))
