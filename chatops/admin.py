"""Slack user links in the admin: saved and deleted through chatops.services, so the audit sees them."""

from django.contrib import admin

from accounts.audit import audit_record
from accounts.models import AuditKind
from chatops.models import SlackUserLink
from chatops.services import slack_link_set


@admin.register(SlackUserLink)
class SlackUserLinkAdmin(admin.ModelAdmin):
    list_display = ("slack_user_id", "user", "clusters", "namespaces", "created_at")
    search_fields = ("slack_user_id", "user__username")
    fields = ("slack_user_id", "user", "clusters", "namespaces")

    def get_readonly_fields(self, request, obj=None):
        return ("slack_user_id",) if obj is not None else ()  # another Slack user is another link

    def save_model(self, request, obj, form, change):
        link, _ = slack_link_set(
            slack_user_id=obj.slack_user_id,
            username=obj.user.get_username(),
            clusters=obj.clusters or [],
            namespaces=obj.namespaces or [],
            actor=request.user,
        )
        obj.pk = link.pk

    def delete_model(self, request, obj):
        audit_record(
            actor=request.user,
            kind=AuditKind.SLACK_LINK,
            object=f"Slack user {obj.slack_user_id}",
            object_id=obj.pk,
            before={"user": obj.user.get_username(), "clusters": obj.clusters, "namespaces": obj.namespaces},
            after=None,
        )
        super().delete_model(request, obj)
