"""Stored MIG plans, and their application to nodes (the audited multi-step action)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fleet.mig_parted import DEFAULT_CONFIG_MAP
from fleet.models import Cluster, GpuNode, NodePool

CONFIG_MAP_NAME = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
    "give the ConfigMap as namespace/name, e.g. gpu-operator/default-mig-parted-config",
)


class MigPlan(models.Model):
    """A plan for one node pool, as the planner made it from the inventory at `created_at`.

    Stored whole (nodes, placements, kept whole, what did not fit) so that it can be reviewed and
    applied later exactly as it was shown, whatever the inventory has become since.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="mig_plans")
    node_pool = models.ForeignKey(NodePool, on_delete=models.CASCADE, related_name="mig_plans")
    gpu_products = models.JSONField(default=list)
    nodes = models.JSONField(default=list)
    placements = models.JSONField(default=list)
    kept_whole = models.JSONField(default=list)
    unplaced = models.JSONField(default=list)
    usd_per_hour_before = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    usd_per_hour_after = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    layouts_from = models.CharField(max_length=300, blank=True, help_text="where the offered layouts came from")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="mig_plans"
    )
    actor_label = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"MIG plan #{self.pk} for {self.node_pool}"

    @property
    def gpus_freed(self) -> int:
        return sum(n.get("gpu_count", 0) for n in self.nodes if n.get("freed"))

    def node_entry(self, node: str) -> dict | None:
        return next((n for n in self.nodes if n["node"] == node), None)


class MigApplication(models.Model):
    """Repartitioning one node to a plan's layout: cordon, drain, relabel, wait, uncordon, verify.

    Each step's status lives in `steps`, so a worker that stops (or is stopped) resumes at the first
    step not done. At most one application runs per node pool at a time (the partial unique
    constraint), so a pool never loses two nodes to repartitioning at once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        FAILED = "failed", "failed"
        SUCCEEDED = "succeeded", "succeeded"

    ACTIVE = (Status.PENDING, Status.RUNNING)

    plan = models.ForeignKey(MigPlan, on_delete=models.CASCADE, related_name="applications")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="mig_applications")
    node_pool = models.ForeignKey(NodePool, on_delete=models.CASCADE, related_name="mig_applications")
    node = models.ForeignKey(GpuNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="mig_applications")
    node_name = models.CharField(max_length=253)
    from_config = models.CharField(max_length=100, blank=True)
    to_config = models.CharField(max_length=100)
    expected_devices = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    steps = models.JSONField(default=list)
    error = models.TextField(blank=True)
    reason = models.TextField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="mig_applications"
    )
    actor_label = models.CharField(max_length=120)
    stop_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["node_pool"],
                condition=Q(status__in=["pending", "running"]),
                name="migapplication_one_active_per_pool",
            )
        ]

    def __str__(self) -> str:
        return f"{self.node_name} -> {self.to_config} ({self.status})"


class FindingDismissal(models.Model):
    """A doctor finding someone chose to live with: who, why, when. The finding stays hidden while
    this row exists; the same mistake on another deployment still shows."""

    deployment = models.ForeignKey("fleet.ModelDeployment", on_delete=models.CASCADE, related_name="dismissals")
    kind = models.CharField(max_length=40)
    reason = models.TextField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="dismissals"
    )
    actor_label = models.CharField(max_length=120)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "kind"], name="findingdismissal_unique")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.deployment_id} dismissed by {self.actor_label}"


class ClusterMigConfig(models.Model):
    """Where a cluster's GPU operator keeps its mig-parted config (the layouts its mig-manager can
    apply), and what a worker last read there. The planner offers those layouts; without a good
    read it falls back to mig-parted's default config and says so on the plan."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="mig_config")
    config_map = models.CharField(
        max_length=317,
        default=DEFAULT_CONFIG_MAP,
        validators=[CONFIG_MAP_NAME],
        help_text="namespace/name of the GPU operator's mig-parted ConfigMap (key config.yaml)",
    )
    config_text = models.TextField(blank=True, help_text="config.yaml as last read well")
    read_at = models.DateTimeField(null=True, blank=True, help_text="when config_text was read")
    checked_at = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=300, blank=True, help_text="why the last check gave no config")

    def __str__(self) -> str:
        return f"{self.cluster} MIG layouts from {self.config_map}"
