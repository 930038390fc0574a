from django.contrib import admin

from chatops.models import SlackUserLink


@admin.register(SlackUserLink)
class SlackUserLinkAdmin(admin.ModelAdmin):
    list_display = ("slack_user_id", "user", "created_at")
    search_fields = ("slack_user_id", "user__username")
    autocomplete_fields = ()
