from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SlackUserLink(models.Model):
    """Who a Slack user is in ScaleDeck: commands run with this user's role, within this link's
    scope (accounts.scope reads `clusters`, `namespaces` and `scoped` as it does a token's), nothing more.

    Admin-managed (admin site, `manage.py chatops_link`): a Slack user with no link is refused."""

    slack_user_id = models.CharField(max_length=32, unique=True, help_text="e.g. U0123ABCD")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_links")
    # A scope, as a token's: the only clusters and namespaces its commands see and scale ([] = all).
    clusters = models.JSONField(default=list, blank=True)
    namespaces = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.slack_user_id} -> {self.user}"

    @property
    def scoped(self) -> bool:
        return bool(self.clusters or self.namespaces)
