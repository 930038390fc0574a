"""Admin: the audit is read-only (no add, change or delete); rules are editable."""

from django.contrib import admin

from scaling.models import PrescaleRule, ScaleAction


@admin.register(ScaleAction)
class ScaleActionAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "actor_label", "source", "operation", "cluster", "namespace", "target_kind",
                    "target_name", "status")
    list_filter = ("status", "source", "operation", "target_kind", "cluster")
    search_fields = ("actor_label", "namespace", "target_name", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("cluster",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    # Append-only: status changes only through the services' conditional UPDATEs.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PrescaleRule)
class PrescaleRuleAdmin(admin.ModelAdmin):
    list_display = ("id", "deployment", "cron", "timezone", "min_replicas", "duration_minutes", "enabled",
                    "last_fired_at")
    list_filter = ("enabled",)
    raw_id_fields = ("deployment", "created_by")
    readonly_fields = ("last_fired_at", "created_at", "updated_at")
