"""The API token FilterSet: the tokens page and `GET /api/v1/tokens/` filter alike."""

from __future__ import annotations

import django_filters

from accounts.models import ApiToken, Role
from core.filters import RangeCheckedFilterSet


class ApiTokenFilterSet(RangeCheckedFilterSet):
    name = django_filters.CharFilter(label="Name")
    user = django_filters.CharFilter(field_name="user__username", label="User")
    role = django_filters.ChoiceFilter(choices=Role.choices, label="Role")
    prefix = django_filters.CharFilter(label="Token prefix")

    search_fields = ("name", "prefix", "user__username")
    ordering_fields = {"name": "name", "user": "user__username", "created_at": "created_at",
                       "expires_at": "expires_at", "last_used_at": "last_used_at"}  # fmt: skip

    class Meta:
        model = ApiToken
        fields: list[str] = []  # the declared filters above, nothing implicit
