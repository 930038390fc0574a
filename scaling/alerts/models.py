"""SLO targets, alerts, silences, receivers and deliveries. See scaling/alerts/__init__.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fleet.models import Cluster, ModelDeployment
from scaling.alerts.rules import DEFAULT_ATTAINMENT, Severity


class SloTarget(models.Model):
    """A deployment's attainment target: the share (0-1) of minutes whose p95 TTFT is within its
    objective over 30 days. The objective itself stays on ModelDeployment.ttft_slo_seconds
    (audited by SloChange)."""

    deployment = models.OneToOneField(ModelDeployment, on_delete=models.CASCADE, related_name="slo_target")
    attainment = models.FloatField(default=DEFAULT_ATTAINMENT)
    # What the last evaluation measured: share of the 30-day error budget left (negative when
    # overspent), the share of minutes (with requests) within the objective over 30 days, and
    # the burn rate over the last hour; null without traffic.
    budget_remaining = models.FloatField(null=True, blank=True)
    attained = models.FloatField(null=True, blank=True)
    burn_rate_1h = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.attainment:g}"

    @property
    def attainment_percent(self) -> float:
        return round(self.attainment * 100, 4)  # 0.995 * 100 is 99.49999999999999

    @property
    def attained_percent(self) -> float | None:
        return None if self.attained is None else self.attained * 100

    @property
    def budget_percent(self) -> float | None:
        return None if self.budget_remaining is None else self.budget_remaining * 100


class AttainmentChange(models.Model):
    """Who changed a deployment's attainment target, from what to what, and why."""

    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="attainment_changes")
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")  # fmt: skip
    actor_label = models.CharField(max_length=120)
    before = models.FloatField()
    after = models.FloatField()
    reason = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.before:g} -> {self.after:g} by {self.actor_label}"


class Alert(models.Model):
    """One firing of one rule for one deployment or node, from start to end.

    At most one row per `fingerprint` is firing (a partial unique constraint): two evaluators
    that see the same breach race to insert it, the loser gets an IntegrityError and sends
    nothing -- that is what keeps one firing from paging twice.
    """

    class State(models.TextChoices):
        FIRING = "firing", "firing"
        RESOLVED = "resolved", "resolved"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=50)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.FIRING)
    fingerprint = models.CharField(max_length=400)
    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="alerts")  # fmt: skip
    node_name = models.CharField(max_length=253, blank=True)
    summary = models.CharField(max_length=500)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    silenced = models.BooleanField(default=False, help_text="a silence covered it when it fired")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=120, blank=True)
    # The evaluation pass that last opened or resolved this row: a pass writes in bulk (INSERT ... ON
    # CONFLICT DO NOTHING, a conditional UPDATE), then reads back the rows carrying its own claim --
    # those are the ones it notifies about; rows another evaluator got first carry that one's claim.
    claim = models.CharField(max_length=40, blank=True, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["fingerprint"], condition=Q(state="firing"), name="alert_one_firing"),
        ]
        indexes = [models.Index(fields=["state", "started_at"], name="alert_state_started")]

    def __str__(self) -> str:
        return f"{self.rule} {self.fingerprint} ({self.state})"


class AlertSilence(models.Model):
    """No notification for this rule and subject until `until` (an operator's decision, audited)."""

    fingerprint = models.CharField(max_length=400)
    until = models.DateTimeField()
    reason = models.TextField()
    actor_label = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["fingerprint", "until"], name="silence_fingerprint_until")]

    def __str__(self) -> str:
        return f"{self.fingerprint} until {self.until:%Y-%m-%d %H:%M}"


class AlertNote(models.Model):
    """The audit of what operators did to an alert: acknowledged, silenced."""

    class Kind(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        SILENCED = "silenced", "silenced"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")  # fmt: skip
    actor_label = models.CharField(max_length=120)
    reason = models.TextField(blank=True)
    until = models.DateTimeField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind} by {self.actor_label}"


class ClusterEvaluation(models.Model):
    """How the last evaluation of a cluster went. `unknown` while Prometheus cannot answer: its
    firing alerts then stay firing (never resolved on missing data), and the page says so."""

    class Status(models.TextChoices):
        OK = "ok", "ok"
        UNKNOWN = "unknown", "unknown"
        NOT_EVALUATED = "off", "not evaluated"  # a Kubernetes cluster with no Prometheus configured

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="alert_evaluation")
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.CharField(max_length=500, blank=True)
    evaluated_at = models.DateTimeField()
    unknown_since = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    queries = models.PositiveIntegerField(default=0)
    # The clock hours (by their ends) whose minutes are in SloHour: the 30-day budget's watermarks.
    slo_hours_since = models.DateTimeField(null=True, blank=True)
    slo_hours_through = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.status}"


class SloHour(models.Model):
    """One clock hour of one deployment's SLO: minutes that served requests, and those whose p95
    TTFT was over the objective of the time. The 30-day budget adds these up (plus the hour so
    far), so Prometheus judges each minute once instead of 43,200 of them every pass."""

    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # the hour's end
    minutes = models.PositiveSmallIntegerField()
    slow_minutes = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "hour"], name="slohour_unique")]
        indexes = [models.Index(fields=["hour"], name="slohour_hour")]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.hour:%Y-%m-%d %H:%M}: {self.slow_minutes}/{self.minutes}"


class Receiver(models.Model):
    """Where notifications go. The URL is a secret: stored encrypted (`url_encrypted`), or read
    from a mounted file (`url_file`), never shown back in full, never logged."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "generic JSON webhook"

    class Event(models.TextChoices):
        ALERTS = "alerts", "alerts"
        ACTIONS = "actions", "scale actions"
        PRESCALE = "prescale", "pre-scale firings"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    url_encrypted = models.TextField(blank=True)
    url_file = models.CharField(max_length=500, blank=True)
    url_hint = models.CharField(max_length=200, blank=True, help_text="scheme and host, for display")
    severities = models.JSONField(default=list, blank=True)  # empty: every severity
    namespaces = models.JSONField(default=list, blank=True)  # empty: every namespace
    events = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One notification to one receiver: its body, attempts and the receiver's answer.

    Unique per (receiver, dedup_key) -- `alert:<id>:firing` and the like -- so an event is never
    queued twice for a receiver, whichever worker queues it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    receiver = models.ForeignKey(Receiver, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20)
    dedup_key = models.CharField(max_length=200)
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["receiver", "dedup_key"], name="delivery_once_per_receiver"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.receiver_id} {self.dedup_key} ({self.status})"
