"""One FilterSet per scaling list, each serving both its page and its API list: scale actions (the audit
page and `GET /api/v1/actions/`) and pre-scale rules."""

from __future__ import annotations

import django_filters

from core.filters import RangeCheckedFilterSet
from fleet.filters import StrictBooleanFilter
from scaling.models import PrescaleRule, ScaleAction


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


class PrescaleRuleFilterSet(RangeCheckedFilterSet):
    """Pre-scale rules by their deployment's cluster, namespace and name: the rules page and
    `GET /api/v1/prescale-rules/`."""

    cluster = django_filters.CharFilter(field_name="deployment__cluster__name", label="Cluster")
    namespace = django_filters.CharFilter(field_name="deployment__namespace", label="Namespace")
    name = django_filters.CharFilter(field_name="deployment__name", label="Deployment")
    enabled = StrictBooleanFilter(label="Enabled")

    search_fields = ("deployment__name", "deployment__namespace", "deployment__cluster__name", "cron", "timezone")
    ordering_fields = {
        "cluster": "deployment__cluster__name",
        "namespace": "deployment__namespace",
        "name": "deployment__name",
        "floor": "min_replicas",
        "created_at": "created_at",
    }

    class Meta:
        model = PrescaleRule
        fields: list[str] = []  # the declared filters above, nothing implicit
