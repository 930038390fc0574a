"""Admin: the audit is read-only (no add, change or delete); rules are editable, with the same
checks as the pages and the API (`prescale_rule_problems`), and saved and deleted through the
same services, so each change is in the one audit with the admin who made it."""

from django import forms
from django.contrib import admin

from scaling import windows
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.prescale import (
    prescale_rule_create,
    prescale_rule_delete,
    prescale_rule_problems,
    prescale_rule_update,
)


@admin.register(ScaleAction)
class ScaleActionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "actor_label",
        "source",
        "operation",
        "cluster",
        "namespace",
        "target_kind",
        "target_name",
        "status",
    )
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


class PrescaleRuleAdminForm(forms.ModelForm):
    class Meta:
        model = PrescaleRule
        fields = ["deployment", "cron", "timezone", "min_replicas", "duration_minutes", "enabled"]

    def clean(self):
        data = super().clean()
        if any(name in self.errors for name in ("cron", "timezone", "min_replicas", "duration_minutes")):
            return data  # the field's own error already says what is wrong
        problems = prescale_rule_problems(
            deployment=data.get("deployment"),
            cron=data.get("cron", ""),
            tz=data.get("timezone", ""),
            min_replicas=data.get("min_replicas"),
            duration_minutes=data.get("duration_minutes"),
        )
        for name, message in problems.items():
            if name not in self.errors:
                self.add_error(name if name in self.fields else None, message)
        if not problems:
            data["cron"] = windows.validate_cron(data["cron"])  # stored normalised, as the services do
        return data


@admin.register(PrescaleRule)
class PrescaleRuleAdmin(admin.ModelAdmin):
    form = PrescaleRuleAdminForm
    list_display = (
        "id",
        "deployment",
        "cron",
        "timezone",
        "min_replicas",
        "duration_minutes",
        "enabled",
        "last_fired_at",
    )
    list_filter = ("enabled",)
    raw_id_fields = ("deployment",)
    readonly_fields = ("created_by", "last_fired_at", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in PrescaleRuleAdminForm.Meta.fields}
        if change:
            prescale_rule_update(rule=PrescaleRule.objects.get(pk=obj.pk), actor=request.user, **values)
        else:
            rule = prescale_rule_create(
                deployment=values["deployment"],
                cron=values["cron"],
                timezone_name=values["timezone"],
                min_replicas=values["min_replicas"],
                duration_minutes=values["duration_minutes"],
                enabled=values["enabled"],
                created_by=request.user,
                actor=request.user,
            )
            obj.pk = rule.pk  # the admin's own log entry and redirect name the saved rule

    def delete_model(self, request, obj):
        prescale_rule_delete(rule=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset.select_related("deployment__cluster"):
            prescale_rule_delete(rule=rule, actor=request.user)
