"""What `GET /api/v1/summary/` answers, declared so the OpenAPI schema describes it."""

from __future__ import annotations

from rest_framework import serializers


class BreachSerializer(serializers.Serializer):
    deployment = serializers.CharField(help_text="namespace/name")
    deployment_id = serializers.IntegerField()
    ttft_p95_seconds = serializers.FloatField()
    objective_seconds = serializers.FloatField()


class OverrideSerializer(serializers.Serializer):
    deployment = serializers.CharField(help_text="namespace/name")
    deployment_id = serializers.IntegerField()
    override = serializers.CharField(help_text='"floor 6", "pin 3"')
    by = serializers.CharField(help_text='who set it: a username, a token name or "rule #3"')
    until = serializers.DateTimeField()
    seconds_left = serializers.IntegerField()


class FiringSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    rule_id = serializers.IntegerField()
    deployment = serializers.CharField(help_text="namespace/name")
    min_replicas = serializers.IntegerField()
    duration_minutes = serializers.IntegerField()


class ClusterSummarySerializer(serializers.Serializer):
    cluster = serializers.CharField(source="cluster.name")
    deployments = serializers.IntegerField()
    in_breach = BreachSerializer(many=True, help_text="deployments whose TTFT p95 is over their objective")
    ttft_unknown = serializers.IntegerField(help_text="deployments with no TTFT p95 to compare")
    metrics_unavailable = serializers.CharField(
        help_text="why some deployments' metrics are unavailable (the most common reason); empty when all reported"
    )
    pending_pods = serializers.IntegerField()
    overrides = OverrideSerializer(many=True, help_text="active time-boxed overrides")
    next_firings = FiringSerializer(many=True, help_text="the next pre-scale firings, soonest first (5 at most)")
    spend_usd_per_hour = serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        allow_null=True,
        coerce_to_string=False,
        help_text="the cluster's priced GPU nodes, whole instances, USD per hour",
    )
    unpriced_nodes = serializers.IntegerField(help_text="GPU nodes with no price, not in the spend")


class SummarySerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    clusters = ClusterSummarySerializer(many=True)
