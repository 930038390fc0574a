"""Forms of the accounts pages: issuing a token, and the audit list's filters (shared with the API)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from accounts.audit import AuditFilter
from accounts.models import AuditKind, Role
from accounts.services import MAX_TOKEN_DAYS
from core.filters import NOT_FILTERS


class TokenForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
                                  to_field_name="username", help_text="whose rights the token acts with")
    name = forms.CharField(max_length=100, help_text="what it is for, e.g. slack-bot")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER, help_text="never above the user's role")
    namespaces = forms.CharField(required=False, max_length=2000,
                                 help_text="comma-separated; empty: every namespace")
    clusters = forms.CharField(required=False, max_length=2000, help_text="comma-separated; empty: every cluster")
    expires_days = forms.IntegerField(required=False, min_value=1, max_value=MAX_TOKEN_DAYS,
                                      label="Expires after (days)", help_text="empty: the default")
    never_expires = forms.BooleanField(required=False)
    read_only = forms.BooleanField(required=False, help_text="may read, never change anything")

    def clean(self):
        data = super().clean()
        if data.get("never_expires") and data.get("expires_days"):
            raise forms.ValidationError("Choose a number of days or 'never expires', not both.")
        return data


class AuditFilterForm(forms.Form):
    """`?kind=&actor=&object=&since=&until=` (kind and actor may repeat); anything else is refused by name."""

    kind = forms.TypedMultipleChoiceField(choices=AuditKind.choices, required=False)
    actor = forms.CharField(required=False, max_length=120)
    object = forms.CharField(required=False, max_length=253)
    since = forms.DateTimeField(required=False, help_text="from this time (ISO 8601)")
    until = forms.DateTimeField(required=False, help_text="before this time (ISO 8601)")

    def __init__(self, params, *args, **kwargs):
        self.unknown = sorted(set(params) - set(self.base_fields) - NOT_FILTERS)
        self.actors = tuple(a.strip() for a in params.getlist("actor") if a.strip())[:50]
        super().__init__(params, *args, **kwargs)

    def clean(self):
        data = super().clean()
        for name in self.unknown:
            self.add_error(None, f"unknown filter {name[:40]}: use kind, actor, object, since or until")
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "must be after since")
        return data

    def audit_filter(self, token=None) -> AuditFilter:
        d = self.cleaned_data
        return AuditFilter(kinds=tuple(d.get("kind") or ()), actors=self.actors, object=d.get("object") or "",
                           since=d.get("since"), until=d.get("until"), token=token)
