from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SlackUserLink(models.Model):
    """Who a Slack user is in ScaleDeck: commands run with this user's role, nothing more.

    Admin-managed (admin site, `manage.py chatops_link`): a Slack user with no link is refused."""

    slack_user_id = models.CharField(max_length=32, unique=True, help_text="e.g. U0123ABCD")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_links")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.slack_user_id} -> {self.user}"
