"""Forms of the accounts pages: issuing a token."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from accounts.models import Role
from accounts.services import MAX_TOKEN_DAYS


class TokenForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        help_text="whose rights the token acts with",
    )
    name = forms.CharField(max_length=100, help_text="what it is for, e.g. slack-bot")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER, help_text="never above the user's role")
    namespaces = forms.CharField(required=False, max_length=2000, help_text="comma-separated; empty: every namespace")
    clusters = forms.CharField(required=False, max_length=2000, help_text="comma-separated; empty: every cluster")
    expires_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        label="Expires after (days)",
        help_text="empty: the default",
    )
    never_expires = forms.BooleanField(required=False)
    read_only = forms.BooleanField(required=False, help_text="may read, never change anything")

    def clean(self):
        data = super().clean()
        if data.get("never_expires") and data.get("expires_days"):
            raise forms.ValidationError("Choose a number of days or 'never expires', not both.")
        return data
