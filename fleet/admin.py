"""Admin for the fleet inventory.

Inventory rows mirror what the last sync saw, so they are read-only here (an edit would be
overwritten by the next sync anyway). What ScaleDeck itself owns stays editable: a cluster's
connection settings and a deployment's TTFT objective.
"""

from django import forms
from django.contrib import admin

from core.errors import ApplicationError, form_error_add
from core.validators import no_control_characters
from fleet.cluster_rules import ADMIN_FIELDS, ClusterConnection, cluster_connection_check
from fleet.models import (
    Autoscaler,
    Cluster,
    Gpu,
    GpuNode,
    MigDevice,
    ModelDeployment,
    NamespaceQuota,
    NodePool,
    Pod,
    SimulatedWorld,
)
from fleet.services import deployment_slo_set
from fleet.slo import validate_slo


class SyncedAdmin(admin.ModelAdmin):
    """Read-only: the sync writes these rows."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # rows are marked gone, never deleted: history points at them


class ClusterAdminForm(forms.ModelForm):
    """The admin refuses what `cluster_add` refuses (fleet/cluster_rules.py), secret paths included."""

    class Meta:
        model = Cluster
        fields = [
            "name",
            "backend",
            "namespaces",
            "region",
            "kubeconfig_path",
            "kube_context",
            "in_cluster",
            "request_timeout_seconds",
            "prometheus_url",
            "prometheus_bearer_token_file",
            "prometheus_basic_auth_user",
            "prometheus_basic_auth_password_file",
            "prometheus_timeout_seconds",
            "prometheus_namespace_label",
            "prometheus_pod_label",
            "prometheus_gpu_namespace_label",
            "prometheus_gpu_pod_label",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        labels = {
            name: data.get(name, "")
            for name in (
                "prometheus_namespace_label",
                "prometheus_pod_label",
                "prometheus_gpu_namespace_label",
                "prometheus_gpu_pod_label",
            )
        }
        try:
            data["namespaces"] = cluster_connection_check(
                ClusterConnection(
                    backend=data.get("backend", ""),
                    kubeconfig_path=data.get("kubeconfig_path", ""),
                    in_cluster=bool(data.get("in_cluster")),
                    namespaces=data.get("namespaces") or [],
                    prometheus_url=data.get("prometheus_url", ""),
                    prometheus_bearer_token_file=data.get("prometheus_bearer_token_file", ""),
                    prometheus_basic_auth_user=data.get("prometheus_basic_auth_user", ""),
                    prometheus_basic_auth_password_file=data.get("prometheus_basic_auth_password_file", ""),
                    prometheus_timeout_seconds=data.get("prometheus_timeout_seconds", 3.0),
                    request_timeout_seconds=data.get("request_timeout_seconds", 10.0),
                    labels=labels,
                )
            )
        except ApplicationError as exc:
            form_error_add(self, exc, field_map=ADMIN_FIELDS)
        return data


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterAdminForm
    list_display = ["name", "backend", "last_sync_status", "last_sync_ok_at", "last_sync_duration_ms", "prometheus_url"]
    list_filter = ["backend", "last_sync_status"]
    search_fields = ["name"]
    readonly_fields = [
        "last_sync_at",
        "last_sync_ok_at",
        "last_sync_duration_ms",
        "last_sync_status",
        "last_sync_error",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "backend", "namespaces", "region"]}),
        ("Kubernetes", {"fields": ["kubeconfig_path", "kube_context", "in_cluster", "request_timeout_seconds"]}),
        (
            "Prometheus",
            {
                "fields": [
                    "prometheus_url",
                    "prometheus_bearer_token_file",
                    "prometheus_basic_auth_user",
                    "prometheus_basic_auth_password_file",
                    "prometheus_timeout_seconds",
                    "prometheus_namespace_label",
                    "prometheus_pod_label",
                    "prometheus_gpu_namespace_label",
                    "prometheus_gpu_pod_label",
                ]
            },
        ),
        ("Last sync", {"fields": readonly_fields}),
    ]


@admin.register(SimulatedWorld)
class SimulatedWorldAdmin(SyncedAdmin):
    list_display = ["cluster", "seed", "updated_at"]
    exclude = ["state"]  # a large JSON document: not for reading in a form


@admin.register(NodePool)
class NodePoolAdmin(SyncedAdmin):
    list_display = ["name", "cluster", "gpu_limit", "consolidation_policy", "gone_at"]
    list_filter = ["cluster"]
    list_select_related = ["cluster"]
    search_fields = ["name"]


class GpuInline(admin.TabularInline):
    model = Gpu
    fields = ["index", "product", "memory_mib", "mig_enabled", "pod"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(GpuNode)
class GpuNodeAdmin(SyncedAdmin):
    list_display = [
        "name",
        "cluster",
        "node_pool",
        "instance_type",
        "capacity_type",
        "gpu_product",
        "gpu_count",
        "mig_config",
        "ready",
        "unschedulable",
        "gone_at",
    ]
    list_filter = ["cluster", "capacity_type", "gpu_product", "ready", "unschedulable"]
    list_select_related = ["cluster", "node_pool"]
    search_fields = ["name", "instance_type"]
    inlines = [GpuInline]


class MigDeviceInline(admin.TabularInline):
    model = MigDevice
    fields = ["slot", "profile", "compute_slices", "memory_mib", "pod"]
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Gpu)
class GpuAdmin(SyncedAdmin):
    list_display = ["__str__", "product", "mig_enabled", "pod"]
    list_filter = ["mig_enabled", "product"]
    list_select_related = ["node", "pod"]
    search_fields = ["node__name"]
    inlines = [MigDeviceInline]


@admin.register(MigDevice)
class MigDeviceAdmin(SyncedAdmin):
    list_display = ["__str__", "profile", "compute_slices", "pod"]
    list_filter = ["profile"]
    list_select_related = ["gpu__node", "pod"]
    search_fields = ["gpu__node__name", "profile"]


class ModelDeploymentAdminForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=2000,
        validators=[no_control_characters],
        help_text="why the objective changes: it goes in the audit log",
    )

    class Meta:
        model = ModelDeployment
        fields = ["ttft_slo_seconds"]

    def clean_ttft_slo_seconds(self):
        seconds = self.cleaned_data.get("ttft_slo_seconds")
        error = validate_slo(seconds) if seconds is not None else None  # empty: the default objective
        if error:
            raise forms.ValidationError(error)
        return seconds


@admin.register(ModelDeployment)
class ModelDeploymentAdmin(admin.ModelAdmin):
    """Only the TTFT objective is ScaleDeck's own; everything else comes from the cluster."""

    form = ModelDeploymentAdminForm

    list_display = [
        "name",
        "namespace",
        "cluster",
        "model",
        "replicas_ready",
        "replicas_desired",
        "gpu_resource",
        "gpu_per_replica",
        "ttft_slo_seconds",
        "gone_at",
    ]
    list_filter = ["cluster", "namespace"]
    list_select_related = ["cluster"]
    search_fields = ["name", "namespace", "model"]
    fields = ["ttft_slo_seconds", "reason"]

    def save_model(self, request, obj, form, change):
        # Through the service, as the deployment page does: the change is audited (SloChange).
        deployment_slo_set(
            deployment=obj,
            seconds=form.cleaned_data["ttft_slo_seconds"],
            reason=form.cleaned_data["reason"],
            actor_user=request.user,
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Autoscaler)
class AutoscalerAdmin(SyncedAdmin):
    list_display = [
        "name",
        "kind",
        "namespace",
        "cluster",
        "target_name",
        "min_replicas",
        "max_replicas",
        "owned_by_scaledobject",
        "gone_at",
    ]
    list_filter = ["cluster", "kind"]
    list_select_related = ["cluster"]
    search_fields = ["name", "target_name", "namespace"]


@admin.register(Pod)
class PodAdmin(SyncedAdmin):
    list_display = [
        "name",
        "namespace",
        "cluster",
        "deployment",
        "node",
        "phase",
        "ready",
        "restarts",
        "waiting_reason",
        "gone_at",
    ]
    list_filter = ["cluster", "phase", "ready"]
    list_select_related = ["cluster", "deployment", "node"]
    search_fields = ["name", "namespace"]


@admin.register(NamespaceQuota)
class NamespaceQuotaAdmin(SyncedAdmin):
    list_display = ["name", "namespace", "cluster", "hard", "used", "gone_at"]
    list_filter = ["cluster"]
    list_select_related = ["cluster"]
    search_fields = ["name", "namespace"]
