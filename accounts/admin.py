from django.contrib import admin

from accounts.models import ApiToken, Membership


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role"]
    list_filter = ["role"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "role", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["role"]
    readonly_fields = ["prefix", "token_hash", "created_at", "last_used_at"]
    exclude = []

    def has_add_permission(self, request):
        return False  # tokens are issued with `manage.py apitoken_create` so the raw value is shown once
