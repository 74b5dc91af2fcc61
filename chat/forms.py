from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.validators import URLValidator
from django.urls import reverse

from chat import login_throttle
from chat.models import EndpointProfile, system_prompt_problem
from chat.quirks import QUIRKS

HEADER_NAME_CHARS = set(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class FirstAccountForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class ThrottledLoginMixin:
    """Refuses a log-in while its account or address has failed too often (the check comes
    before the password's, so a throttled guess learns nothing), counts each failure (each
    attempt is recorded as one first, and deleted again if refused or right)."""

    throttled = False

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        # Recorded as a failure before the password is checked: concurrent attempts count
        # each other, so no more than the limit reach the password check.
        wait, attempt = login_throttle.login_attempt(request=self.request, username=username)
        if wait:
            self.throttled = True
            raise forms.ValidationError(
                "Too many failed log-ins for this account or from this address. "
                f"Try again in {login_throttle.wait_text(wait)}.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_throttle.login_failed(attempt=attempt)
            raise
        login_throttle.login_succeeded(username=username, attempt=attempt)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class WriteOnlyTextarea(forms.Textarea):
    """Never renders its value: a secret typed in a form with errors is not sent back."""

    def format_value(self, value: Any) -> str:
        return ""


class EndpointProfileForm(forms.ModelForm):
    """Secrets are write-only: the fields start blank and blank means "keep"."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave blank if the endpoint needs "
        "no key (a local server).",
    )
    base_url = forms.URLField(
        label="Base URL",
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://…/v1"}),
        help_text="The OpenAI-compatible base, e.g. https://api.openai.com/v1 or "
        "http://localhost:11434/v1",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored key", required=False)
    extra_headers = forms.CharField(
        label="Extra headers",
        required=False,
        widget=WriteOnlyTextarea(
            attrs={"rows": 3, "placeholder": "X-Org-Id: 1234\nX-Title: Playground"}
        ),
        help_text="One `Name: value` per line, sent with every request. Stored encrypted.",
    )
    clear_extra_headers = forms.BooleanField(label="Remove the stored headers", required=False)
    models_text = forms.CharField(
        label="Models",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One model id per line. Filled by “Fetch models”, or type them by hand.",
    )

    class Meta:
        model = EndpointProfile
        fields = [
            "name",
            "base_url",
            "default_model",
            "connect_timeout",
            "first_byte_timeout",
            "idle_timeout",
            "price_input",
            "price_output",
        ]
        labels = {
            "price_input": "Price per million input tokens",
            "price_output": "Price per million output tokens",
            "connect_timeout": "Connect timeout (s)",
            "first_byte_timeout": "First byte timeout (s)",
            "idle_timeout": "Idle timeout (s)",
        }

    field_order = [
        "name",
        "base_url",
        "api_key",
        "clear_api_key",
        "default_model",
        "quirk_model_optional",
        "models_text",
        "extra_headers",
        "clear_extra_headers",
    ]

    def __init__(self, *args: Any, owner: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        if not self.instance.pk or not self.instance.api_key_encrypted:
            del self.fields["clear_api_key"]
        if not self.instance.pk or not self.instance.extra_headers_encrypted:
            del self.fields["clear_extra_headers"]
        # One field per quirk (chat.quirks), after the others but where field_order says.
        for q in QUIRKS:
            self.fields[q.field_name] = q.form_field()
            self.initial.setdefault(q.field_name, q.form_initial(self.instance.quirk(q.name)))
        self.order_fields(self.field_order)
        # "Blank keeps" is only said where there is something stored to keep.
        if self.instance.pk and self.instance.api_key_encrypted:
            self.fields["api_key"].help_text = "Leave blank to keep the current key."
        if self.instance.pk and self.instance.extra_headers_encrypted:
            self.fields["extra_headers"].help_text = (
                "One `Name: value` per line, sent with every request. Stored encrypted; "
                "leave blank to keep the current ones."
            )
        if self.is_bound and self.data.get("extra_headers"):
            self.fields[
                "extra_headers"
            ].help_text = "Not shown again for safety: type the headers again before saving."
        if self.is_bound and self.data.get("api_key"):
            # The key is never sent back to the page, not even on a form with errors.
            self.fields[
                "api_key"
            ].help_text = "Not shown again for safety: type the key again before saving."
        if self.instance.pk:
            self.initial.setdefault("models_text", "\n".join(self.instance.model_names))
            if self.instance.api_key_encrypted:
                self.fields["api_key"].widget.attrs["placeholder"] = (
                    f"stored: {self.instance.masked_key}"
                )
            if self.instance.extra_headers_encrypted:
                self.fields["extra_headers"].widget.attrs["placeholder"] = (
                    "stored (hidden); type to replace"
                )
        for name in ("connect_timeout", "first_byte_timeout", "idle_timeout"):
            self.fields[name].widget.attrs.update({"min": "0.1", "step": "0.1"})

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = EndpointProfile.objects.filter(owner=self.owner, name=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("You already have an endpoint with this name.")
        return name

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        URLValidator(schemes=["http", "https"])(url)
        return url.rstrip("/")

    def clean_extra_headers(self) -> dict[str, str] | None:
        raw = self.cleaned_data["extra_headers"]
        if not raw.strip():
            return None
        headers: dict[str, str] = {}
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            name = name.strip()
            if not sep or not name or set(name) - HEADER_NAME_CHARS:
                raise forms.ValidationError(f"Line {number}: expected `Name: value`.")
            if "\r" in value or "\n" in value:
                raise forms.ValidationError(f"Line {number}: header values cannot span lines.")
            headers[name] = value.strip()
        return headers

    def clean_models_text(self) -> list[str]:
        seen: dict[str, None] = {}
        for line in self.cleaned_data["models_text"].splitlines():
            if line.strip():
                seen[line.strip()] = None
        return list(seen)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("price_input", "price_output"):
            value = cleaned.get(name)
            if value is not None and value < 0:
                self.add_error(name, "A price cannot be negative.")
        for name in ("connect_timeout", "first_byte_timeout", "idle_timeout"):
            value = cleaned.get(name)
            if value is not None and not 0 < value <= 3600:
                self.add_error(name, "Between 0.1 and 3600 seconds.")
        return cleaned

    def save(self, commit: bool = True) -> EndpointProfile:
        profile: EndpointProfile = super().save(commit=False)
        profile.owner = self.owner
        if self.cleaned_data.get("clear_api_key"):
            profile.api_key = ""
        elif self.cleaned_data.get("api_key"):
            profile.api_key = self.cleaned_data["api_key"]
        if self.cleaned_data.get("clear_extra_headers"):
            profile.extra_headers = {}
        elif self.cleaned_data.get("extra_headers"):
            profile.extra_headers = self.cleaned_data["extra_headers"]
        quirks = dict(profile.quirks or {})  # keys the form does not know are kept
        for q in QUIRKS:
            value = q.stored(self.cleaned_data[q.field_name])
            if q.saved_when_default or value != q.stored(q.default):
                quirks[q.name] = value
            else:
                quirks.pop(q.name, None)
        profile.quirks = quirks
        models = self.cleaned_data.get("models_text") or []
        if models != profile.model_names:
            profile.models_cache = models
        if commit:
            profile.save()
        return profile


class LaneSettingsForm(forms.Form):
    """Endpoint, model and system prompt of a chat (lane 0)."""

    profile = forms.ModelChoiceField(queryset=EndpointProfile.objects.none(), label="Endpoint")
    # Blank only where the endpoint has a default model (see clean).
    model = forms.CharField(label="Model", max_length=200, required=False)
    # The lane's wire API (Lane.api): blank follows the endpoint's default.
    api = forms.ChoiceField(
        label="API",
        required=False,
        choices=[
            ("", "Endpoint's default"),
            ("chat", "Chat Completions"),
            ("responses", "Responses"),
        ],
    )
    system_prompt = forms.CharField(
        label="System prompt", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, owner: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["profile"].queryset = EndpointProfile.objects.filter(owner=owner)
        self.fields["profile"].empty_label = None

    def clean_model(self) -> str:
        return self.cleaned_data["model"].strip()

    def clean_system_prompt(self) -> str:
        # Not max_length: that renders maxlength, and a browser cuts a longer paste
        # silently; here the form comes back with the text and says why.
        prompt = self.cleaned_data["system_prompt"]
        problem = system_prompt_problem(prompt)
        if problem:
            raise forms.ValidationError(problem)
        return prompt

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        profile = cleaned.get("profile")
        if "model" in cleaned and not cleaned["model"] and profile and not profile.model_optional:
            self.add_error(
                "model",
                "This endpoint needs a model id. (If it has a default model, tick “Requests "
                "may omit the model” in its settings: then a blank Model sends none.)",
            )
        if cleaned.get("api") == "responses" and profile and not profile.quirk("responses"):
            self.add_error(
                "api",
                f"{profile.name} is set as not serving the Responses API (its settings: "
                "“Serves the Responses API”). Switch that on to use it here.",
            )
        return cleaned


class NewConversationForm(LaneSettingsForm):
    content = forms.CharField(label="Message", widget=forms.Textarea, required=False)
    mode = forms.ChoiceField(
        label="Mode",
        choices=[("chat", "Chat"), ("completion", "Completions (legacy /v1/completions)")],
        initial="chat",
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Picking an endpoint fetches its model field (value and suggestions), as a lane
        # head does on a conversation page.
        self.fields["profile"].widget.attrs.update(
            {
                "hx-get": reverse("chat:model_options"),
                "hx-trigger": "change",
                "hx-target": "#model-field",
                "hx-include": "#id_model",
            }
        )

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or "chat"

    # Open the conversation without sending, to set parameters, tools or a second lane
    # first: what was typed goes to its composer.
    then = forms.ChoiceField(
        choices=[("", "send"), ("params", "Parameters"), ("tools", "Tools"), ("lane", "+ Lane")],
        required=False,
    )

    def clean_content(self) -> str:
        text = self.cleaned_data["content"]
        if not text.strip() and not self.data.get("then"):
            raise forms.ValidationError("Type a message first.")
        return text
