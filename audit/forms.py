"""The audit list's filters, shared by the page and the API."""

from __future__ import annotations

from django import forms

from accounts.models import AuditKind
from audit.selectors import AuditFilter
from core.filters import NOT_FILTERS


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
        return AuditFilter(
            kinds=tuple(d.get("kind") or ()),
            actors=self.actors,
            object=d.get("object") or "",
            since=d.get("since"),
            until=d.get("until"),
            token=token,
        )
