"""One FilterSet per alerting list, each serving its page and its API list alike (core.filters'
conventions: repeated values, `__ic`, `q`, `ordering`, unknown parameters named)."""

from __future__ import annotations

import django_filters

from core.filters import RangeCheckedFilterSet
from scaling.alerts.models import Alert, Receiver
from scaling.alerts.rules import Severity


class AlertFilterSet(RangeCheckedFilterSet):
    """Alerts by state, severity, rule, and the cluster, namespace and deployment they are about."""

    state = django_filters.ChoiceFilter(choices=Alert.State.choices, label="State")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, label="Severity")
    rule = django_filters.CharFilter(label="Alert rule")
    cluster = django_filters.CharFilter(field_name="cluster__name", label="Cluster")
    namespace = django_filters.CharFilter(field_name="deployment__namespace", label="Namespace")
    deployment = django_filters.CharFilter(field_name="deployment__name", label="Deployment")

    search_fields = ("summary", "rule", "node_name", "deployment__name", "deployment__namespace", "cluster__name")
    ordering_fields = {"started_at": "started_at", "ended_at": "ended_at", "severity": "severity",
                       "state": "state", "rule": "rule"}  # fmt: skip

    class Meta:
        model = Alert
        fields: list[str] = []  # the declared filters above, nothing implicit


class ReceiverFilterSet(RangeCheckedFilterSet):
    name = django_filters.CharFilter(label="Name")
    kind = django_filters.ChoiceFilter(choices=Receiver.Kind.choices, label="Kind")

    search_fields = ("name", "url_hint")
    ordering_fields = {"name": "name", "kind": "kind"}

    class Meta:
        model = Receiver
        fields: list[str] = []  # the declared filters above, nothing implicit
