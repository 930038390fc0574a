"""What we change: scale actions (the audit), overrides with expiry, pre-scale rules, GPU quotas.

`ScaleAction` is the audit log and the work queue at once: a row is created `pending` by a
service, claimed `running` by exactly one worker with a conditional UPDATE, and finished
`succeeded` or `failed`; a refused request is stored `rejected` and never touches a cluster.
Rows are never edited by hand (the admin is read-only) and never deleted.

A time-boxed override (a manual `for 2h`, or a pre-scale rule's window) is a succeeded action
with `expires_at`; it is *active* until the expiry job restores it (`restored_at`,
`restore_action`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from fleet.autoscalers import ReplicaOwnerKind
from fleet.models import Cluster, ModelDeployment, NamespaceQuota


class ScaleActionQuerySet(models.QuerySet):
    def on_target(self, *, cluster_id: int, namespace: str, target_kind: str, target_name: str):
        return self.filter(cluster_id=cluster_id, namespace=namespace, target_kind=target_kind, target_name=target_name)

    def active_overrides(self, *, now):
        """Succeeded time-boxed overrides whose window is still open and not yet restored."""
        return self.filter(
            status=ScaleAction.Status.SUCCEEDED,
            operation=ScaleAction.Operation.SCALE,
            expires_at__gt=now,
            restored_at__isnull=True,
        )


class ScaleAction(models.Model):
    class Source(models.TextChoices):
        UI = "ui", "browser"
        API = "api", "API"
        RULE = "rule", "pre-scale rule"
        EXPIRY = "expiry", "expiry"

    class Operation(models.TextChoices):
        SCALE = "scale", "scale"
        RESTORE = "restore", "restore after expiry"
        QUOTA = "quota", "quota change"
        # An autoscaler policy edit (scaling/services/policy.py); request {"changes"} or {"revert_of"}.
        POLICY = "policy", "autoscaler policy edit"

    class Mode(models.TextChoices):
        FLOOR = "floor", "floor"
        PIN = "pin", "pin"

    class TargetKind(models.TextChoices):
        """The object written: a replicas' owner (fleet.autoscalers.ReplicaOwnerKind), or a quota."""

        SCALEDOBJECT = ReplicaOwnerKind.SCALEDOBJECT.value, "KEDA ScaledObject"
        HPA = ReplicaOwnerKind.HPA.value, "HorizontalPodAutoscaler"
        DEPLOYMENT = ReplicaOwnerKind.DEPLOYMENT.value, "Deployment /scale"
        QUOTA = "quota", "ResourceQuota"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        REJECTED = "rejected", "rejected"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.REJECTED)

    # Who. Exactly one of user/token is set for people and bots; neither for rules and expiry.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="scale_actions"
    )
    actor_token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="scale_actions"
    )
    actor_label = models.CharField(max_length=120, help_text='"alice", "bot:slack-bot", "rule:#3", "expiry"')
    # Stable identity for idempotency keys: "user:7", "token:3", "rule:3", "expiry".
    actor_key = models.CharField(max_length=40)
    source = models.CharField(max_length=8, choices=Source.choices)
    operation = models.CharField(max_length=8, choices=Operation.choices, default=Operation.SCALE)

    # What. The cluster is protected: a cluster with audit history is not deleted by accident.
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="scale_actions")
    namespace = models.CharField(max_length=63)
    deployment = models.ForeignKey(
        ModelDeployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="scale_actions"
    )
    quota = models.ForeignKey(
        NamespaceQuota, on_delete=models.SET_NULL, null=True, blank=True, related_name="scale_actions"
    )
    rule = models.ForeignKey("PrescaleRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="firings")
    request = models.JSONField(default=dict, help_text="replicas, mode, ttl_minutes, raise_max, dry_run / hard, force")
    mode = models.CharField(max_length=5, choices=Mode.choices, blank=True)
    target_kind = models.CharField(max_length=12, choices=TargetKind.choices, blank=True)
    target_name = models.CharField(max_length=253, blank=True)
    # Values by name ("min_replicas", "paused_replicas", "replicas", "hard"): what the fields held
    # before, what they hold after (written, or observed when nothing was written), and the value
    # an override stack falls back to when its last override ends.
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    baseline = models.JSONField(default=dict, blank=True)
    # The Kubernetes field paths actually written; empty when nothing needed writing.
    fields = models.JSONField(default=list, blank=True)
    reason = models.TextField()
    notes = models.JSONField(default=list, blank=True, help_text="what the decision took into account")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Kubernetes answer.
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=500, blank=True)
    resource_version_before = models.CharField(max_length=64, blank=True)
    resource_version_after = models.CharField(max_length=64, blank=True)
    # Recorded before each write (see scaling/services/execution.py, "the write protocol"): what the
    # claim read (values and resourceVersion) and what it is about to write, so that a run after a
    # crash can tell from the object whether the write landed. Kept once finished, as audit.
    intent = models.JSONField(default=dict, blank=True)
    # The process holding the claim ("host:pid:start", scaling/services/workers.py): a claim whose
    # process is provably gone is taken over at once rather than after the reconciler's timeout.
    claimed_by = models.CharField(max_length=120, blank=True)

    idempotency_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Time-boxed overrides.
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    restore_action = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="restores"
    )

    objects = ScaleActionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["actor_key", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="scaleaction_idempotency_key_per_actor",
            ),
        ]
        indexes = [
            models.Index(fields=["cluster", "namespace", "target_kind", "target_name"], name="scaleaction_target"),
            models.Index(fields=["status", "dispatched_at"], name="scaleaction_status_dispatch"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.operation} {self.target_kind}/{self.target_name} by {self.actor_label}: {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def is_override(self) -> bool:
        return self.expires_at is not None and self.operation == self.Operation.SCALE


class PrescaleRule(models.Model):
    """Raise a deployment's floor at every firing of a cron expression, for a while.

    The cron is read in the rule's IANA timezone (see `scaling.windows` for DST); each firing
    opens the window [firing, firing + duration). `last_fired_at` is the last firing claimed:
    ticks compare-and-set it, so a firing is applied once however many ticks see it.
    """

    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="prescale_rules")
    cron = models.CharField(max_length=100, help_text='five fields, e.g. "0 9 * * 1-5"')
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin")
    min_replicas = models.PositiveIntegerField()
    duration_minutes = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="prescale_rules"
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment", "id"]

    def __str__(self) -> str:
        return f"rule #{self.pk}: {self.cron} ({self.timezone}) floor {self.min_replicas}"


class WhatIfRun(models.Model):
    """One what-if, run by a worker (scaling/whatif_runs.py): the page asks, the worker answers here.

    A simulation takes seconds of CPU, so it never runs in a web request (a few of them would hold
    every web worker); at most one per user is queued or running (the partial unique constraint),
    so one person cannot fill the queue either."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="whatif_runs")
    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="whatif_runs")
    policies = models.JSONField()  # the candidates as typed, one string each
    hours = models.FloatField()
    spike = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)  # one summary per candidate (whatif_runs.summary_json)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status__in=["queued", "running"]), name="one_active_whatif_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"what-if #{self.pk} ({self.status})"
