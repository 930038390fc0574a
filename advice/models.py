"""Uploaded traces and advisor runs (the search runs in the worker: advice/services.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from fleet.models import ModelDeployment


class TraceUpload(models.Model):
    """An Azure-format CSV trace, checked when uploaded and kept in the data folder."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trace_uploads")
    name = models.CharField(max_length=200)  # the file name as uploaded, for people
    path = models.CharField(max_length=500)  # where the file is kept, under DATA_DIR/traces
    size_bytes = models.BigIntegerField()
    requests = models.IntegerField()
    seconds = models.IntegerField()  # the trace's span
    bad_rows = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.name} ({self.requests} requests)"


class AdviceRun(models.Model):
    """One advisor search for a deployment: queued, running (with progress), done, failed or cancelled."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advice_runs")
    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="advice_runs")
    trace = models.ForeignKey(TraceUpload, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    hours = models.FloatField(null=True, blank=True)  # None: the trace's length, or 24 h of own traffic
    rate_multiplier = models.FloatField(default=1.0)
    spike = models.JSONField(null=True, blank=True)  # {multiplier, start_seconds, ramp_seconds, duration_seconds}
    slo_seconds = models.FloatField()
    attainment = models.FloatField(default=0.99)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # 0-1
    cancel_requested = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)  # the command's JSON
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"advice {self.id} for deployment {self.deployment_id} ({self.status})"
