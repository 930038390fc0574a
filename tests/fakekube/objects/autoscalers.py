"""HorizontalPodAutoscalers, KEDA ScaledObjects and the HPAs KEDA makes for them."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakekube.objects.base import CREATED, name_hash


def hpa(
    namespace: str,
    name: str,
    *,
    target: str,
    min_replicas: int | None = 1,
    max_replicas: int = 4,
    metrics: Sequence[dict] | None = None,
    owner_scaledobject: str = "",
    target_kind: str = "Deployment",
) -> dict:
    """An autoscaling/v2 HPA. Default metric: vLLM queue depth per pod (a Pods metric)."""
    if metrics is None:
        metrics = [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "vllm:num_requests_waiting"},
                    "target": {"type": "AverageValue", "averageValue": "5"},
                },
            }
        ]
    meta: dict = {"name": name, "namespace": namespace, "creationTimestamp": CREATED}
    if owner_scaledobject:
        meta["labels"] = {
            "app.kubernetes.io/managed-by": "keda-operator",
            "scaledobject.keda.sh/name": owner_scaledobject,
        }
        meta["ownerReferences"] = [
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": owner_scaledobject,
                "uid": name_hash(owner_scaledobject, length=36),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
        "maxReplicas": max_replicas,
        "metrics": list(metrics),
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": spec,
        "status": {
            "currentReplicas": min_replicas or 1,
            "desiredReplicas": min_replicas or 1,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": CREATED}
            ],
        },
    }


def scaled_object(
    namespace: str,
    name: str,
    *,
    target: str,
    min_replicas: int | None = 1,
    max_replicas: int | None = 8,
    query: str = "vllm:num_requests_waiting",
    threshold: str = "5",
    triggers: Sequence[dict] | None = None,
    paused_replicas: str | None = None,
    paused: str | None = None,
    target_kind: str | None = None,
) -> dict:
    """A KEDA ScaledObject scaling on a Prometheus query (the vLLM queue depth by default)."""
    if triggers is None:
        triggers = [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                    "metricName": "vllm:num_requests_waiting",
                    "query": query,
                    "threshold": threshold,
                },
            }
        ]
    annotations = {}
    if paused_replicas is not None:
        annotations["autoscaling.keda.sh/paused-replicas"] = paused_replicas
    if paused is not None:
        annotations["autoscaling.keda.sh/paused"] = paused
    ref = {"name": target}
    if target_kind:
        ref["kind"] = target_kind
    spec: dict = {"scaleTargetRef": ref, "pollingInterval": 15, "cooldownPeriod": 360, "triggers": list(triggers)}
    if min_replicas is not None:
        spec["minReplicaCount"] = min_replicas
    if max_replicas is not None:
        spec["maxReplicaCount"] = max_replicas
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": annotations,
            "generation": 1,
            "creationTimestamp": CREATED,
            "finalizers": ["finalizer.keda.sh"],
        },
        "spec": spec,
        "status": {
            "hpaName": f"keda-hpa-{name}",
            "originalReplicaCount": 1,
            "scaleTargetKind": "apps/v1.Deployment",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                {"type": "Active", "status": "True", "reason": "ScalerActive"},
            ],
        },
    }


def keda_hpa(so: dict) -> dict:
    """The HPA KEDA creates for a ScaledObject: keda-hpa-<name>, owned by it, on an External metric."""
    spec = so["spec"]
    return hpa(
        so["metadata"]["namespace"],
        f"keda-hpa-{so['metadata']['name']}",
        target=spec["scaleTargetRef"]["name"],
        min_replicas=max(spec.get("minReplicaCount", 0), 1),
        max_replicas=spec.get("maxReplicaCount", 100),
        metrics=[
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "s0-prometheus",
                        "selector": {"matchLabels": {"scaledobject.keda.sh/name": so["metadata"]["name"]}},
                    },
                    "target": {
                        "type": "AverageValue",
                        "averageValue": spec["triggers"][0]["metadata"].get("threshold", "1"),
                    },
                },
            }
        ],
        owner_scaledobject=so["metadata"]["name"],
    )
