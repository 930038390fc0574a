from django.contrib import admin, messages

from accounts.models import ApiToken, Membership
from accounts.services import api_token_revoke


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role"]
    list_filter = ["role"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are read here, never edited: a role, scope or expiry changed in a form would bypass
    the audit. The one change offered is revoking, through the same service as the tokens page,
    the API and `manage.py apitoken_revoke`, which writes the audit row."""

    list_display = ["name", "user", "role", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["role"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request):
        return False  # tokens are issued with `manage.py apitoken_create` so the raw value is shown once

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: a deleted token leaves no trace in the audit

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(
            api_token_revoke(token=token, actor=request.user, reason="revoked in the Django admin")
            for token in queryset
        )
        self.message_user(request, f"{revoked} token{'s' if revoked != 1 else ''} revoked.", messages.SUCCESS)
