"""Roles and API tokens.

A user's role is on `Membership`; a superuser is an admin. A bot token carries its own role,
never above its user's, is stored only as a SHA-256 hash, and is shown once at creation.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    VIEWER = "viewer", "viewer"
    OPERATOR = "operator", "operator"
    ADMIN = "admin", "admin"


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


class Membership(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


TOKEN_PREFIX = "sdk_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self, now=None):
        """Neither revoked nor expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices)
    # The first characters, to recognise a token in lists and logs without revealing it.
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # None: the token never expires (asked for on purpose; the default is SCALEDECK_TOKEN_DEFAULT_DAYS).
    expires_at = models.DateTimeField(null=True, blank=True)
    # Written at most once a minute per token (accounts/authentication.py), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Scope: empty lists mean every cluster / every namespace the role allows (accounts/scope.py).
    clusters = models.JSONField(default=list, blank=True)
    namespaces = models.JSONField(default=list, blank=True)
    read_only = models.BooleanField(default=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def refusal(self, now=None) -> str | None:
        """Why this token is no longer accepted, in words, or None while it is."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return f"This token was revoked on {self.revoked_at:%Y-%m-%d %H:%M} UTC."
        if self.expires_at is not None and self.expires_at <= now:
            return f"This token expired on {self.expires_at:%Y-%m-%d %H:%M} UTC."
        if not self.user.is_active:
            return "The user this token belongs to is disabled."
        return None

    @property
    def scoped(self) -> bool:
        return bool(self.clusters or self.namespaces)


class AuditKind(models.TextChoices):
    PRESCALE_RULE = "prescale_rule", "pre-scale rule"
    SLO = "slo", "SLO objective"
    QUOTA = "quota", "quota"
    TOKEN = "token", "API token"
    RECEIVER = "receiver", "alert receiver"
    SILENCE = "silence", "alert silence or acknowledgement"
    AUTOSCALER_POLICY = "autoscaler_policy", "autoscaler policy"
    SCALE_ACTION = "scale_action", "scale action"
    MIG_PLAN = "mig_plan", "MIG plan"
    MIG_REPARTITION = "mig_repartition", "MIG repartitioning"
    FINDING = "finding", "configuration finding"
    SLACK_LINK = "slack_link", "Slack user link"


class AuditEntry(models.Model):
    """One change to ScaleDeck's own settings: who, what, before and after, why (accounts/audit.py).

    Cluster writes are not copied here: they stay in ScaleAction with their Kubernetes answer,
    and the audit list reads them from there (accounts/audit.py `audit_rows`).
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=120, db_index=True)
    kind = models.CharField(max_length=20, choices=AuditKind.choices, db_index=True)
    object_label = models.CharField(max_length=300)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.kind} {self.object_label}"
