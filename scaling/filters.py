"""One FilterSet for scale actions, serving both the audit page and `GET /api/v1/actions/`."""

from __future__ import annotations

import django_filters

from core.filters import RangeCheckedFilterSet
from scaling.models import ScaleAction


class ScaleActionFilterSet(RangeCheckedFilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name", label="Cluster")
    namespace = django_filters.CharFilter(label="Namespace")
    deployment = django_filters.NumberFilter(field_name="deployment_id", label="Deployment id")
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="iexact", label="Actor")
    status = django_filters.ChoiceFilter(choices=ScaleAction.Status.choices, label="Status")
    source = django_filters.ChoiceFilter(choices=ScaleAction.Source.choices, label="Source")

    search_fields = ("reason", "actor_label", "namespace", "target_name", "error")
    ordering_fields = {"created_at": "created_at", "status": "status", "namespace": "namespace"}

    class Meta:
        model = ScaleAction
        fields: list[str] = []  # the declared filters above, nothing implicit
