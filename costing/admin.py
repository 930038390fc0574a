from django.contrib import admin
from django.db import models

from costing.models import CostSample, CostWatermark, InstancePrice


@admin.register(InstancePrice)
class InstancePriceAdmin(admin.ModelAdmin):
    """The price catalog. A price change is a new row with a later effective date: keep the old one,
    it prices the past."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # price pages are https

    list_display = (
        "instance_type",
        "region",
        "capacity_type",
        "usd_per_hour",
        "gpu_count",
        "gpu_model",
        "effective_from",
        "cluster",
        "source",
    )
    list_filter = ("capacity_type", "region", "cluster")
    search_fields = ("instance_type", "gpu_model", "source")
    date_hierarchy = "effective_from"
    ordering = ("instance_type", "region", "capacity_type", "-effective_from")
    autocomplete_fields = ()
    fieldsets = (
        (None, {"fields": ("instance_type", "region", "capacity_type", "usd_per_hour", "gpu_count", "gpu_model")}),
        ("Where it comes from", {"fields": ("source", "source_url", "effective_from", "notes")}),
        (
            "Negotiated price",
            {
                "fields": ("cluster",),
                "description": "Set a cluster to make this a negotiated price that wins over the public one "
                "for that cluster only, from its effective date on.",
            },
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CostSample)
class CostSampleAdmin(ReadOnlyAdmin):
    list_display = (
        "start",
        "end",
        "cluster_name",
        "node_name",
        "kind",
        "namespace",
        "deployment_name",
        "pod_name",
        "gpus",
        "usd",
        "idle",
    )
    list_filter = ("kind", "idle", "capacity_type", "cluster_name")
    search_fields = ("node_name", "pod_name", "deployment_name", "namespace")
    date_hierarchy = "hour"
    list_select_related = False


@admin.register(CostWatermark)
class CostWatermarkAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "accrued_until")
