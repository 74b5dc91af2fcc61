from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat.forms import FirstAccountForm, ThrottledAuthenticationForm
from chat.sockets import auth as wsauth


def no_users_yet() -> bool:
    return not get_user_model().objects.exists()


class PlaygroundPasswordChangeView(PasswordChangeView):
    """Django's, and then the user's other sessions lose their open sockets while this
    session's sockets stay open (Django keeps this session signed in under a new key)."""

    def form_valid(self, form: Any) -> HttpResponse:
        old_key = self.request.session.session_key
        form.user._socket_password_view = True  # the post_save receiver leaves it to us
        response = super().form_valid(form)
        # The new key and hash are stored now, not when the response leaves, so a socket
        # that re-checks after the events below finds them.
        self.request.session.save()
        wsauth.password_changed(old_key, self.request.session.session_key, form.user.pk)
        return response


class PlaygroundLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    authentication_form = ThrottledAuthenticationForm

    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if no_users_yet():
            return redirect("setup")
        return super().get(request, *args, **kwargs)

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {**super().get_context_data(**kwargs), "signup_open": settings.SIGNUP_OPEN}


login_view = login_not_required(PlaygroundLoginView.as_view())


def _create_account(request: HttpRequest, *, first: bool) -> HttpResponse:
    form = FirstAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Checked again inside the transaction: two racing first visits make one admin.
            if first and not no_users_yet():
                raise Http404
            user = form.save(commit=False)
            user.is_staff = user.is_superuser = first
            user.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. A demo endpoint is ready to try.")
        return redirect("chat:index")
    return render(request, "accounts/setup.html", {"form": form, "first": first})


@login_not_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """On an empty database, the first visitor creates the first (admin) account."""
    if not no_users_yet():
        return redirect("login")
    return _create_account(request, first=True)


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if no_users_yet():
        return redirect("setup")
    if not settings.SIGNUP_OPEN:
        raise Http404("Sign-up is closed")
    return _create_account(request, first=False)
