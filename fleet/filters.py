"""One FilterSet per resource, used by both the HTML lists and the API: `?cluster=prod` means the same in each.

Clusters are matched by name, not id, so an unknown name is an empty answer, not an error; a
malformed value (`?ready=maybe`, `?capacity_type=cheap`) is an error naming the parameter.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from core.filters import RangeCheckedFilterSet
from fleet.models import Cluster, GpuNode, ModelDeployment

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class StrictBooleanField(forms.Field):
    """true/false (1/0, yes/no, on/off); anything else is an error, not "no filter"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"{str(value)[:40]!r} is not true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class LiveRowsFilterSet(RangeCheckedFilterSet):
    """Only rows still in the cluster (gone_at null) unless `?include_gone=true`."""

    include_gone = StrictBooleanFilter(method="keep_all")

    def keep_all(self, queryset, name, value):
        return queryset  # applied in filter_queryset, which also runs when the parameter is absent

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("include_gone"):
            queryset = queryset.filter(gone_at__isnull=True)
        return queryset


class ClusterFilterSet(RangeCheckedFilterSet):
    name = django_filters.CharFilter()
    backend = django_filters.ChoiceFilter(choices=Cluster.Backend.choices)

    search_fields = ("name", "region")
    ordering_fields = {"name": "name", "last_sync_at": "last_sync_at"}

    class Meta:
        model = Cluster
        fields: list[str] = []  # the declared filters above, nothing implicit


class DeploymentFilterSet(LiveRowsFilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name")
    namespace = django_filters.CharFilter()
    name = django_filters.CharFilter()
    model = django_filters.CharFilter()

    search_fields = ("name", "namespace", "model", "cluster__name")
    ordering_fields = {
        "name": "name",
        "namespace": "namespace",
        "cluster": "cluster__name",
        "model": "model",
        "replicas": "replicas_desired",
        "ready": "replicas_ready",
    }

    class Meta:
        model = ModelDeployment
        fields: list[str] = []  # the declared filters above, nothing implicit


class NodeFilterSet(LiveRowsFilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name")
    node_pool = django_filters.CharFilter(field_name="node_pool__name")
    gpu_model = django_filters.CharFilter(field_name="gpu_product")
    capacity_type = django_filters.ChoiceFilter(choices=GpuNode.CapacityType.choices)
    instance_type = django_filters.CharFilter()
    name = django_filters.CharFilter()
    ready = StrictBooleanFilter()
    cordoned = StrictBooleanFilter(field_name="unschedulable")
    mig = StrictBooleanFilter(method="filter_mig")

    search_fields = ("name", "instance_type", "gpu_product", "node_pool__name", "cluster__name")
    ordering_fields = {
        "name": "name",
        "cluster": "cluster__name",
        "instance_type": "instance_type",
        "gpus": "gpu_count",
    }

    class Meta:
        model = GpuNode
        fields: list[str] = []  # the declared filters above, nothing implicit

    def filter_mig(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.exclude(mig_config="") if value else queryset.filter(mig_config="")
