"""What decides how far a Deployment may scale, as Kubernetes says it: HPAs (autoscaling/v2),
KEDA ScaledObjects (keda.sh/v1alpha1) with their pause annotations, GPU entries of
ResourceQuotas, and Karpenter NodePools (karpenter.sh/v1). Plain dicts in, `fleet.backends.base`
dataclasses out; no `kubernetes` import.
"""

from __future__ import annotations

from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import GPU_RESOURCE, AutoscalerFacts, NodePoolFacts, QuotaFacts, one_line
from fleet.backends.kubernetes.values import (
    MAX_COUNT,
    OddObject,
    Warnings,
    as_dict,
    as_list,
    as_str,
    json_int,
    str_dict,
    whole_count,
)

PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED = "autoscaling.keda.sh/paused"


# --------------------------------------------------------------------------- autoscalers


def _number_text(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return one_line(value, 40) if isinstance(value, str) else "?"


def _hpa_metric(metric: dict) -> str:
    kind = as_str(metric.get("type"))
    body = as_dict(metric.get(kind[:1].lower() + kind[1:])) if kind else {}
    if kind in ("Resource", "ContainerResource"):
        name = as_str(body.get("name")) or "?"
    else:
        name = as_str(as_dict(body.get("metric")).get("name")) or "?"
    target = as_dict(body.get("target"))
    target_type = as_str(target.get("type"))
    if target_type == "Utilization":
        text = f"{name} > {_number_text(target.get('averageUtilization'))}% utilization"
    elif target_type == "AverageValue":
        text = f"{name} > {_number_text(target.get('averageValue'))} per replica"
    else:
        text = f"{name} > {_number_text(target.get('value'))}"
    if kind == "ContainerResource" and as_str(body.get("container")):
        text += f" (container {as_str(body.get('container'))})"
    return text


def parse_hpa(obj: dict, namespace: str, name: str) -> AutoscalerFacts | None:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    ref = as_dict(spec.get("scaleTargetRef"))
    if ref.get("kind") != "Deployment":
        return None  # StatefulSets and custom targets are not ScaleDeck's
    target = as_str(ref.get("name"))
    if not target:
        raise OddObject("scaleTargetRef has no name")
    metrics = [_hpa_metric(m) for m in map(as_dict, as_list(spec.get("metrics")))]
    owner_refs = map(as_dict, as_list(meta.get("ownerReferences")))
    owner = next((as_str(r.get("name")) for r in owner_refs if r.get("kind") == "ScaledObject"), "")
    return AutoscalerFacts(
        kind=ReplicaOwnerKind.HPA,
        name=name,
        namespace=namespace,
        target_name=target,
        min_replicas=json_int(spec.get("minReplicas"), "spec.minReplicas", default=1),
        max_replicas=json_int(spec.get("maxReplicas"), "spec.maxReplicas", minimum=1),
        # An HPA without metrics scales on 80% CPU.
        metric=one_line("; ".join(metrics) or "cpu > 80% utilization", 300),
        resource_version=as_str(meta.get("resourceVersion")),
        owned_by_scaledobject=owner,
    )


def _trigger(trigger: dict) -> str:
    kind = one_line(as_str(trigger.get("type")) or "?", 40)
    meta = str_dict(trigger.get("metadata"))
    if kind in ("cpu", "memory"):
        return f"{kind}: {meta.get('value', '?')}{'%' if trigger.get('metricType') == 'Utilization' else ''}"
    if kind == "cron":
        window = f"{meta.get('start', '?')} to {meta.get('end', '?')}"
        return f"cron: {window} -> {meta.get('desiredReplicas', '?')} replicas"
    subject = meta.get("query") or meta.get("metricName") or meta.get("queueName") or meta.get("topic") or ""
    threshold = meta.get("threshold") or meta.get("targetValue") or meta.get("value") or meta.get("queueLength")
    text = f"{kind}: {' '.join(subject.split())}" if subject else kind
    return f"{text} > {threshold}" if threshold else text


def parse_scaledobject(obj: dict, namespace: str, name: str, warnings: Warnings) -> AutoscalerFacts | None:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    ref = as_dict(spec.get("scaleTargetRef"))
    if (as_str(ref.get("kind")) or "Deployment") != "Deployment":
        return None
    target = as_str(ref.get("name"))
    if not target:
        raise OddObject("scaleTargetRef has no name")
    annotations = str_dict(meta.get("annotations"))
    paused_replicas = None
    if PAUSED_REPLICAS in annotations:
        text = annotations[PAUSED_REPLICAS].strip()
        if text.isdigit() and int(text) <= MAX_COUNT:
            paused_replicas = int(text)
        else:
            warnings.add(f"scaledobject {namespace}/{name}: {PAUSED_REPLICAS} is not a count ({one_line(text, 20)!r})")
    return AutoscalerFacts(
        kind=ReplicaOwnerKind.SCALEDOBJECT,
        name=name,
        namespace=namespace,
        target_name=target,
        min_replicas=json_int(spec.get("minReplicaCount"), "spec.minReplicaCount", default=0),
        max_replicas=json_int(spec.get("maxReplicaCount"), "spec.maxReplicaCount", default=100),
        metric=one_line("; ".join(_trigger(t) for t in map(as_dict, as_list(spec.get("triggers")))), 300),
        paused_replicas=paused_replicas,
        paused=annotations.get(PAUSED, "").strip().lower() == "true",
        resource_version=as_str(meta.get("resourceVersion")),
    )


# --------------------------------------------------------------------------- quotas, node pools


def is_gpu_quota_key(key: str) -> bool:
    return key in ("requests.nvidia.com/gpu", "nvidia.com/gpu") or key.startswith("requests.nvidia.com/mig-")


def quota_entries(values: object, what: str) -> dict[str, int]:
    """The GPU entries of a quota's hard / used map, as whole counts."""
    return {
        k: whole_count(v, f"{what}[{k}]")
        for k, v in as_dict(values).items()
        if isinstance(k, str) and is_gpu_quota_key(k)
    }


def parse_quota(obj: dict, namespace: str, name: str) -> QuotaFacts:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    hard = status.get("hard") if isinstance(status.get("hard"), dict) else spec.get("hard")
    return QuotaFacts(
        namespace=namespace,
        name=name,
        hard=quota_entries(hard, "hard"),
        used=quota_entries(status.get("used"), "used"),
        resource_version=as_str(meta.get("resourceVersion")),
    )


_CAPACITY_TYPES = ("on-demand", "spot")


def parse_nodepool(obj: dict, _namespace: str, name: str) -> NodePoolFacts:
    spec = as_dict(obj.get("spec"))
    requirements = [as_dict(r) for r in as_list(as_dict(as_dict(spec.get("template")).get("spec")).get("requirements"))]

    def values(key: str) -> tuple[str | None, tuple[str, ...]]:
        for r in requirements:
            if r.get("key") == key:
                return as_str(r.get("operator")), tuple(v for v in as_list(r.get("values")) if isinstance(v, str))
        return None, ()

    operator, types = values("node.kubernetes.io/instance-type")
    instance_types = types if operator == "In" else ()
    operator, given = values("karpenter.sh/capacity-type")
    if operator == "In":
        capacity_types = given
    elif operator == "NotIn":
        capacity_types = tuple(t for t in _CAPACITY_TYPES if t not in given)
    elif operator == "Exists":
        capacity_types = _CAPACITY_TYPES
    else:
        capacity_types = ("on-demand",)  # Karpenter's default
    limit = as_dict(spec.get("limits")).get(GPU_RESOURCE)
    return NodePoolFacts(
        name=name,
        instance_types=instance_types,
        capacity_types=capacity_types,
        gpu_limit=None if limit is None else whole_count(limit, f"limits[{GPU_RESOURCE}]"),
        consolidation_policy=one_line(as_str(as_dict(spec.get("disruption")).get("consolidationPolicy")), 50),
    )
