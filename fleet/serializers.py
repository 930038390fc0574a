"""API representations of clusters, deployments and nodes (read-only).

Metrics and costs are not on the rows: the viewset reads them for the whole page at once and
passes them in the serializer context (`metrics`, `costs`: dicts keyed by row id).
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from fleet import selectors
from fleet.autoscalers import ReplicaOwner, api_kind
from fleet.backends.base import DeploymentMetrics
from fleet.cold_start import ColdStart
from fleet.models import Cluster, GpuNode, ModelDeployment

_datetime = serializers.DateTimeField()


def _time(value):
    return _datetime.to_representation(value) if value is not None else None


def money(value: Decimal | None) -> str | None:
    """A $/hour rate as a string with 4 to 6 decimals ("12.3000", "27.44705"); None stays None
    (unknown, never 0). Six places is the price catalog's precision: a node's hourly cost is its
    catalog price to the digit, not rounded to 4 places."""
    if value is None:
        return None
    text = str(value.quantize(Decimal("0.000001")))
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(4, '0')}"


def metrics_representation(m: DeploymentMetrics) -> dict:
    """Current values; null where unknown (`unavailable_reason` says why when nothing is known).
    Rates are per second over vLLM's 5-minute window; `error_rate` is a 0-1 share of finished
    requests (finish reasons other than stop and length, e.g. abort)."""
    return {
        "queue_depth": m.queue_depth,
        "requests_running": m.running,
        "ttft_p50_seconds": m.ttft_p50_seconds,
        "ttft_p95_seconds": m.ttft_p95_seconds,
        "ttft_p99_seconds": m.ttft_p99_seconds,
        "itl_p95_seconds": m.itl_p95_seconds,
        "e2e_p95_seconds": m.e2e_p95_seconds,
        "error_rate": m.error_rate,
        "preemptions_per_second": m.preemptions_per_second,
        "generation_tokens_per_second": m.generation_tokens_per_second,
        "gpu_utilization": m.gpu_utilization,
        "kv_cache_usage": m.kv_cache_usage,
        "as_of": _time(m.as_of),
        "unavailable_reason": m.unavailable_reason,
    }


def autoscaler_representation(owner: ReplicaOwner) -> dict:
    """The API's `autoscaler`: kind "keda" | "hpa" | "none" | "conflict" (fleet.autoscalers.api_kind)."""
    a = owner.autoscaler
    return {
        "kind": api_kind(owner.kind),
        "name": a.name if a else None,
        "min_replicas": a.min_replicas if a else None,
        "max_replicas": a.max_replicas if a else None,
        "metric": (a.metric or None) if a else None,
        "paused_replicas": a.paused_replicas if a else None,
        "conflicts": [
            {"kind": api_kind(c.kind), "name": c.name, "min_replicas": c.min_replicas, "max_replicas": c.max_replicas}
            for c in owner.conflicts
        ],
    }


class ClusterSerializer(serializers.ModelSerializer):
    stale = serializers.BooleanField(source="is_stale", read_only=True)

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "backend",
            "namespaces",
            "last_sync_at",
            "last_sync_ok_at",
            "last_sync_status",
            "last_sync_error",
            "stale",
        ]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    """Rows from `selectors.deployment_queryset()`; context carries `metrics` and `costs`."""

    cluster = serializers.CharField(source="cluster.name", read_only=True)
    replicas = serializers.SerializerMethodField()
    autoscaler = serializers.SerializerMethodField()
    gpu = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()
    cost_per_hour_usd = serializers.SerializerMethodField()
    slo_ttft_seconds = serializers.FloatField(source="slo_seconds", read_only=True)
    as_of = serializers.DateTimeField(source="cluster.last_sync_ok_at", read_only=True)
    cold_start = serializers.SerializerMethodField()

    class Meta:
        model = ModelDeployment
        fields = [
            "id",
            "cluster",
            "namespace",
            "name",
            "model",
            "replicas",
            "autoscaler",
            "gpu",
            "metrics",
            "cost_per_hour_usd",
            "slo_ttft_seconds",
            "as_of",
            "cold_start",
        ]
        read_only_fields = fields

    def get_replicas(self, obj: ModelDeployment) -> dict:
        return {"desired": obj.replicas_desired, "ready": obj.replicas_ready}

    def get_autoscaler(self, obj: ModelDeployment) -> dict:
        return autoscaler_representation(selectors.deployment_owner(obj))

    def get_gpu(self, obj: ModelDeployment) -> dict:
        return {"resource": obj.gpu_resource or None, "per_replica": obj.gpu_per_replica}

    def get_metrics(self, obj: ModelDeployment) -> dict:
        return metrics_representation(self.context.get("metrics", {}).get(obj.id) or DeploymentMetrics())

    def get_cost_per_hour_usd(self, obj: ModelDeployment) -> str | None:
        return money(self.context.get("costs", {}).get(obj.id))

    def get_cold_start(self, obj: ModelDeployment) -> dict:
        """Measured over the last 7 days (fleet/cold_start.py): seconds, nulls without samples."""
        return (self.context.get("cold_starts", {}).get(obj.id) or ColdStart()).as_dict()


class DeploymentDetailSerializer(DeploymentSerializer):
    """One deployment, with why it runs this many replicas (context `scaling`: scaling/why.py)."""

    scaling = serializers.SerializerMethodField()

    class Meta(DeploymentSerializer.Meta):
        fields = [*DeploymentSerializer.Meta.fields, "scaling"]
        read_only_fields = fields

    def get_scaling(self, obj: ModelDeployment) -> dict | None:
        """{metric, metric_value, target_value, implied_replicas, min_replicas, max_replicas, floor,
        pinned, binding, blockers}; binding is autoscaler, max, min, floor, pin, paused, quota,
        capacity or manual (no autoscaler)."""
        why = self.context.get("scaling", {}).get(obj.id)
        return why.as_dict() if why is not None else None


class NodeSerializer(serializers.ModelSerializer):
    """Rows from `selectors.node_queryset()`; context carries `costs`."""

    cluster = serializers.CharField(source="cluster.name", read_only=True)
    node_pool = serializers.SerializerMethodField()
    gpu_model = serializers.CharField(source="gpu_product", read_only=True)
    gpu_count = serializers.SerializerMethodField()
    mig = serializers.SerializerMethodField()
    cordoned = serializers.BooleanField(source="unschedulable", read_only=True)
    hourly_cost_usd = serializers.SerializerMethodField()

    class Meta:
        model = GpuNode
        fields = [
            "id",
            "name",
            "cluster",
            "node_pool",
            "instance_type",
            "capacity_type",
            "zone",
            "gpu_model",
            "gpu_count",
            "mig",
            "ready",
            "cordoned",
            "hourly_cost_usd",
        ]
        read_only_fields = fields

    def get_node_pool(self, obj: GpuNode) -> str | None:
        return obj.node_pool.name if obj.node_pool_id else None

    def get_gpu_count(self, obj: GpuNode) -> int:
        # The label counts physical GPUs; on a MIG node `nvidia.com/gpu` capacity is 0, so never use that alone.
        return max(obj.gpu_count, int(obj.capacity.get("nvidia.com/gpu", 0) or 0))

    def get_mig(self, obj: GpuNode) -> dict:
        config = obj.mig_config if obj.mig_config and obj.mig_config != "all-disabled" else None
        return {"config": config, "devices": obj.mig_devices}

    def get_hourly_cost_usd(self, obj: GpuNode) -> str | None:
        return money(self.context.get("costs", {}).get(obj.id))
