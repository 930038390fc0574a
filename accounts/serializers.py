"""API bodies for tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from accounts.models import ApiToken, Role
from accounts.services import MAX_TOKEN_DAYS


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "role",
            "prefix",
            "clusters",
            "namespaces",
            "read_only",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
            "state",
        ]
        read_only_fields = fields

    def get_state(self, token) -> str:
        if token.revoked_at:
            return "revoked"
        return "expired" if token.refusal() else "active"


class ApiTokenCreateSerializer(serializers.Serializer):
    user = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.filter(is_active=True))
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices)
    namespaces = serializers.ListField(child=serializers.CharField(max_length=253), max_length=100, default=list)
    clusters = serializers.ListField(child=serializers.CharField(max_length=253), max_length=100, default=list)
    expires_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        allow_null=True,
        default=-1,
        help_text="omit for the default, null for never",
    )
    read_only = serializers.BooleanField(default=False)


class RevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
