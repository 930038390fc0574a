"""Admin for MIG: where each cluster's GPU operator keeps its mig-parted ConfigMap. What a worker
read there is shown, not edited (the next read would overwrite it)."""

from django.contrib import admin

from mig.models import ClusterMigConfig


@admin.register(ClusterMigConfig)
class ClusterMigConfigAdmin(admin.ModelAdmin):
    list_display = ("cluster", "config_map", "read_at", "checked_at", "problem")
    fields = ("cluster", "config_map", "read_at", "checked_at", "problem", "config_text")
    readonly_fields = ("read_at", "checked_at", "problem", "config_text")
    list_select_related = ("cluster",)
