"""API shapes for scale actions, pre-scale rules and quotas. Inputs refuse unknown fields."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rest_framework import serializers

from core.validators import no_control_characters
from fleet.models import ModelDeployment, NamespaceQuota
from scaling import decisions, windows
from scaling.models import PrescaleRule, ScaleAction
from scaling.quota_keys import MAX_QUOTA_DEVICES, quota_key_error


class StrictInput(serializers.Serializer):
    """Refuses fields it does not know: a typo such as "replica" is an error, not ignored."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["expected a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        errors = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
            value = None
        for name in unknown:
            errors[name] = [f"unknown field {name!r}; expected one of: {', '.join(sorted(self.fields))}"]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class ScaleRequestSerializer(StrictInput):
    replicas = serializers.IntegerField(min_value=0, max_value=decisions.MAX_REPLICAS)
    reason = serializers.CharField(
        max_length=2000, allow_blank=False, trim_whitespace=True, validators=[no_control_characters]
    )
    mode = serializers.ChoiceField(choices=decisions.MODES, default=decisions.FLOOR)
    ttl_minutes = serializers.IntegerField(
        min_value=1, max_value=decisions.MAX_TTL_MINUTES, required=False, allow_null=True, default=None
    )
    raise_max = serializers.BooleanField(default=False)
    dry_run = serializers.BooleanField(default=False)


class OverrideEndSerializer(StrictInput):
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=True,
        validators=[no_control_characters],
    )


class ScaleActionSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    actor = serializers.CharField(source="actor_label")
    target = serializers.SerializerMethodField()
    response = serializers.SerializerMethodField()

    class Meta:
        model = ScaleAction
        fields = [
            "id",
            "status",
            "operation",
            "source",
            "actor",
            "cluster",
            "namespace",
            "deployment",
            "quota",
            "rule",
            "target",
            "mode",
            "request",
            "before",
            "after",
            "fields",
            "reason",
            "notes",
            "error",
            "response",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "restored_at",
            "restore_action",
        ]
        read_only_fields = fields

    def get_target(self, action: ScaleAction) -> dict:
        return {"kind": action.target_kind, "name": action.target_name}

    def get_response(self, action: ScaleAction) -> dict | None:
        if action.response_code is None and not action.resource_version_after:
            return None
        return {
            "code": action.response_code,
            "body": action.response_body,
            "resource_version": action.resource_version_after or None,
        }


def dry_run_body(action: ScaleAction) -> dict:
    preview = action.preview

    def money(value):
        return None if value is None else str(value)

    return {
        "dry_run": True,
        "target": {"kind": action.target_kind, "name": action.target_name},
        "fields": action.fields,
        "before": action.before,
        "after": action.after,
        "expires_at": action.expires_at,
        "replicas": {"before": preview.replicas_before, "after": preview.replicas_after},
        "cost_per_hour_usd": {
            "before": money(preview.cost_per_hour_usd_before),
            "after": money(preview.cost_per_hour_usd_after),
        },
        "quota": preview.quota,
        # KEDA paused (autoscaling.keda.sh/paused-replicas): what runs now, and once unpinned.
        "pinned": None
        if preview.pinned_replicas is None
        else {
            "replicas": preview.pinned_replicas,
            "replicas_when_unpinned": preview.replicas_when_unpinned,
            "cost_per_hour_usd_when_unpinned": money(preview.cost_per_hour_usd_when_unpinned),
        },
        "notes": action.notes,
        # Where the extra replicas would run, how many new nodes, the pool's limit, time to Ready.
        "capacity": preview.capacity.as_dict() if preview.capacity is not None else None,
    }


def firing_rows(rule: PrescaleRule, *, now: datetime | None = None, count: int = 5) -> list[dict]:
    try:
        instants = windows.next_firings(rule.cron, rule.timezone, now or timezone.now(), count)
    except (windows.WindowError, ValueError):
        return []
    return [{"utc": at.isoformat(), "local": windows.local(at, rule.timezone).isoformat()} for at in instants]


class PrescaleRuleSerializer(serializers.ModelSerializer):
    deployment = serializers.PrimaryKeyRelatedField(queryset=ModelDeployment.objects.alive())
    next_firings = serializers.SerializerMethodField()

    class Meta:
        model = PrescaleRule
        fields = [
            "id",
            "deployment",
            "cron",
            "timezone",
            "min_replicas",
            "duration_minutes",
            "enabled",
            "next_firings",
            "last_fired_at",
        ]
        read_only_fields = ["id", "next_firings", "last_fired_at"]
        extra_kwargs = {
            "min_replicas": {"max_value": decisions.MAX_REPLICAS},
            "cron": {"validators": [no_control_characters]},
            "timezone": {"validators": [no_control_characters]},
        }

    def get_next_firings(self, rule: PrescaleRule) -> list[dict]:
        return firing_rows(rule, now=self.context.get("now"))

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {n for n, f in self.fields.items() if not f.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {
                        n: [f"unknown or read-only field {n!r}; expected one of: {', '.join(sorted(writable))}"]
                        for n in unknown
                    }
                )
        return super().to_internal_value(data)


class QuotaSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")

    class Meta:
        model = NamespaceQuota
        fields = ["id", "cluster", "namespace", "name", "hard", "used"]
        read_only_fields = fields


class QuotaPatchSerializer(StrictInput):
    # null removes an entry
    hard = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_QUOTA_DEVICES, allow_null=True), allow_empty=False
    )
    reason = serializers.CharField(
        max_length=2000, allow_blank=False, trim_whitespace=True, validators=[no_control_characters]
    )
    force = serializers.BooleanField(default=False)

    def validate_hard(self, hard: dict) -> dict:
        """Entry names checked here, so a malformed one is a 400 with nothing recorded."""
        problems = [problem for key in hard if (problem := quota_key_error(key))]
        if problems:
            raise serializers.ValidationError(problems)
        return hard
