"""The audit list's API body."""

from __future__ import annotations

from rest_framework import serializers


class AuditRowSerializer(serializers.Serializer):
    id = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    kind = serializers.CharField()
    object = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    action_url = serializers.CharField(allow_null=True, help_text="the scale action, for cluster writes")
