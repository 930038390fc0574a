"""The admin site: open only to ScaleDeck admins.

Django's admin lets in any active staff user; being staff is a Django flag, not a ScaleDeck
role, so an operator or viewer who was once made staff (or a demo account) could edit clusters,
prices and tokens there. Here the user must also hold the admin role (`accounts.services.user_role`).
"""

from __future__ import annotations

import inspect

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.decorators import login_not_required
from django.template.response import TemplateResponse
from django.urls import URLResolver
from django.utils.decorators import method_decorator

from accounts.login import limited_login, locked_message
from accounts.models import Role, role_at_least
from accounts.services import user_role


def is_scaledeck_admin(user) -> bool:
    return bool(user and user.is_active and user.is_staff and role_at_least(user_role(user), Role.ADMIN))


class AdminLoginForm(AdminAuthenticationForm):
    """Refuses at the login form, rather than logging in a user the site will then turn away."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not role_at_least(user_role(user), Role.ADMIN):
            raise forms.ValidationError("The admin needs ScaleDeck's admin role.", code="invalid_login")


def _login_not_required_all(patterns) -> None:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _login_not_required_all(pattern.url_patterns)
        elif not inspect.ismethod(pattern.callback):  # the site's own views (login, catch-all) say it themselves
            login_not_required(pattern.callback)


class ScaleDeckAdminSite(admin.AdminSite):
    site_header = "ScaleDeck admin"
    site_title = "ScaleDeck admin"
    login_form = AdminLoginForm

    def has_permission(self, request) -> bool:
        return is_scaledeck_admin(request.user)

    def get_urls(self):
        """Every admin URL, marked `login_not_required`: the admin checks sign-in itself (`admin_view`)
        and sends strangers to its own login page, so the site-wide LoginRequiredMiddleware lets
        its pages through instead of sending them to ScaleDeck's."""
        urls = super().get_urls()
        _login_not_required_all(urls)
        return urls

    @method_decorator(login_not_required)
    def login(self, request, extra_context=None):
        """Django admin's sign-in, limited per user and address exactly as ScaleDeck's own
        (accounts/login.py): the admin is the same door to the same accounts."""
        if request.method != "POST":
            return super().login(request, extra_context)

        def refuse(username: str, wait: int):
            form = self.login_form(request, initial={"username": username})  # unbound: no password check
            messages.error(request, locked_message(username, wait))  # the admin's pages show messages
            context = {
                **self.each_context(request),
                "title": "Log in",
                "subtitle": None,
                "form": form,
                "app_path": request.get_full_path(),
                "username": username,
                **(extra_context or {}),
            }
            return TemplateResponse(request, self.login_template or "admin/login.html", context)

        return limited_login(request, lambda: super(ScaleDeckAdminSite, self).login(request, extra_context), refuse)
