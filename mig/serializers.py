"""MIG plan API bodies: the contract's shape, `{id, cluster, node_pool, nodes, placements, kept_whole,
usd_per_hour_before, usd_per_hour_after}`, plus what did not fit and who planned it."""

from __future__ import annotations

from rest_framework import serializers

from fleet.models import Cluster, NodePool
from mig.models import MigApplication, MigPlan

_NODE_FIELDS = (
    "node",
    "from_config",
    "to_config",
    "devices_before",
    "devices_after",
    "whole_gpus_after",
    "freed",
    "custom_entry",
    "gpu_count",
)
_PLACEMENT_FIELDS = (
    "deployment",
    "deployment_name",
    "profile",
    "replicas",
    "need_mib",
    "usd_per_hour_after",
    "usd_per_million_tokens_before",
    "usd_per_million_tokens_after",
)


class MigPlanRequestSerializer(serializers.Serializer):
    """`cluster` by name (or id), `node_pool` by name within it."""

    cluster = serializers.CharField(max_length=63)
    node_pool = serializers.CharField(max_length=253)

    def validate(self, attrs):
        key = attrs["cluster"].strip()
        lookup = {"id": int(key)} if key.isdigit() else {"name": key}
        cluster = Cluster.objects.filter(**lookup).first()
        if cluster is None:
            raise serializers.ValidationError({"cluster": [f"no cluster named {key[:63]}"]})
        pool = NodePool.objects.alive().filter(cluster=cluster, name=attrs["node_pool"].strip()).first()
        if pool is None:
            raise serializers.ValidationError(
                {"node_pool": [f"cluster {cluster.name} has no node pool named {attrs['node_pool'][:253]}"]}
            )
        return {"cluster": cluster, "node_pool": pool}


class MigPlanSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    node_pool = serializers.CharField(source="node_pool.name")
    nodes = serializers.SerializerMethodField()
    placements = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="actor_label")
    gpus_freed = serializers.IntegerField()

    class Meta:
        model = MigPlan
        fields = [
            "id",
            "cluster",
            "node_pool",
            "gpu_products",
            "nodes",
            "placements",
            "kept_whole",
            "unplaced",
            "usd_per_hour_before",
            "usd_per_hour_after",
            "gpus_freed",
            "layouts_from",
            "created_by",
            "created_at",
        ]

    def get_nodes(self, plan: MigPlan) -> list[dict]:
        return [{k: n.get(k) for k in _NODE_FIELDS} for n in plan.nodes]

    def get_placements(self, plan: MigPlan) -> list[dict]:
        return [
            {
                "deployment": p["deployment_id"],
                "deployment_name": p["deployment"],
                **{k: p.get(k) for k in _PLACEMENT_FIELDS[2:]},
            }
            for p in plan.placements
        ]

    def to_representation(self, plan):
        body = super().to_representation(plan)
        body["kept_whole"] = [
            {
                "deployment": k["deployment_id"],
                "deployment_name": k["deployment"],
                "why": k["why"],
                "whole_gpus": k["whole_gpus"],
            }
            for k in plan.kept_whole
        ]
        return body


class MigApplyRequestSerializer(serializers.Serializer):
    node = serializers.CharField(max_length=253)
    reason = serializers.CharField(max_length=2000)


class MigApplicationSerializer(serializers.ModelSerializer):
    """A node's repartitioning: who, why, how far (`steps`: name, title, status, detail)."""

    cluster = serializers.CharField(source="cluster.name")
    node_pool = serializers.CharField(source="node_pool.name")
    node = serializers.CharField(source="node_name")
    actor = serializers.CharField(source="actor_label")
    steps = serializers.SerializerMethodField()

    class Meta:
        model = MigApplication
        fields = [
            "id",
            "plan",
            "cluster",
            "node_pool",
            "node",
            "from_config",
            "to_config",
            "expected_devices",
            "status",
            "steps",
            "error",
            "reason",
            "actor",
            "stop_requested",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_steps(self, application: MigApplication) -> list[dict]:
        return [{k: s.get(k, "") for k in ("name", "title", "status", "detail")} for s in application.steps]


def finding_body(row) -> dict:
    """A doctor finding as the API shows it (a `mig.doctor_selectors.FindingRow`)."""
    body = {
        "id": row.id,
        "cluster": row.cluster,
        "namespace": row.namespace,
        "deployment": row.deployment,
        "deployment_name": row.deployment_name,
        "kind": row.kind,
        "severity": row.severity,
        "message": row.message,
        "evidence": row.evidence,
    }
    if row.dismissed is not None:
        body["dismissed"] = {
            "by": row.dismissed.actor_label,
            "reason": row.dismissed.reason,
            "at": row.dismissed.at.isoformat(),
        }
    return body


class DismissRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
