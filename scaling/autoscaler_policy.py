"""Autoscaler policy edits: validate, then turn into the merge patch and the diff an operator sees.

Pure (no Django models, no cluster). An edit names the fields to change, in ScaleDeck's words:
KEDA `min_replicas`, `max_replicas`, `polling_interval_seconds`, `cooldown_seconds`,
`triggers: [{index, threshold, activation_threshold, query}]`, `behavior`; HPA `min_replicas`,
`max_replicas`, `metrics: [{index, target_value}]`, `behavior`. The edited spec is checked
before anything is sent: a ScaledObject against KEDA's own CRD schema (v2.20.2
`keda.sh_scaledobjects.yaml`, openAPIV3Schema of `spec`, descriptions dropped, kept in
`data/`, packaged), an HPA against the `autoscaling/v2` rules the API server enforces; `behavior` in
both against the API server's HPA behavior rules (KEDA hands it to the HPA it creates, so the
API server would refuse it there, after KEDA accepted the ScaledObject). Trigger thresholds are
written as strings, as KEDA's CRD stores them.

The patch is a JSON merge patch carrying `metadata.resourceVersion`: a list (triggers,
metrics) is sent whole, because a merge patch replaces lists. The diff lists each changed
field's path with its value before and after.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwnerKind

_SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "keda_scaledobject_v1alpha1_spec.json"
KEDA_FIELDS = {"min_replicas", "max_replicas", "polling_interval_seconds", "cooldown_seconds", "triggers", "behavior"}
HPA_FIELDS = {"min_replicas", "max_replicas", "metrics", "behavior"}
MAX_REPLICAS = 1000
_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Argo CD and Flux mark what they manage; their next sync puts their copy back.
GITOPS_MARKS = (
    "argocd.argoproj.io/instance",
    "argocd.argoproj.io/tracking-id",
    "app.kubernetes.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)


def _keda_schema() -> dict:
    return json.loads(_SCHEMA_PATH.read_text())


class PolicyEditError(ApplicationError):
    """400 naming the field (`field` is the edit's field, `path` the spec path refused)."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message, field=field)


@dataclass(frozen=True)
class PolicyEdit:
    kind: ReplicaOwnerKind  # SCALEDOBJECT | HPA
    patch: dict  # the merge patch body, resourceVersion included
    diff: list[dict] = field(default_factory=list)  # [{"path", "before", "after"}]
    warning: str = ""  # GitOps: the next sync may revert this


# ------------------------------------------------------------------ a small OpenAPI v3 checker


def _type_ok(value, kind: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }.get(kind, True)


def schema_errors(value, schema: dict, path: str = "spec") -> list[str]:
    """What a structural schema (the subset CRDs use) refuses in `value`, each with its path."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            return [f"{path} must be a whole number or a string"]
        if isinstance(value, str) and "pattern" in schema and not re.match(schema["pattern"], value):
            return [f"{path} {value!r} is not a quantity"]
        return []
    kind = schema.get("type")
    if kind and not _type_ok(value, kind):
        return [f"{path} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path} must be one of {', '.join(map(str, schema['enum']))}")
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path} must be at most {schema['maximum']}")
        if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
            errors.append(f"{path} must fit in 32 bits")
    if kind == "string" and len(value) < schema.get("minLength", 0):
        errors.append(f"{path} must not be empty")
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path} needs at least {schema['minItems']} item(s)")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
    if kind == "object":
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name} is required")
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if properties is not None and name in properties:
                errors += schema_errors(item, properties[name], f"{path}.{name}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{path}.{name}")
            elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{name} is not a field of this object")
    return errors


# ------------------------------------------------------------------ the HPA rules (autoscaling/v2)


def behavior_errors(behavior, path: str) -> list[str]:
    """autoscaling/v2 HorizontalPodAutoscalerBehavior as the API server validates it."""
    if not isinstance(behavior, dict):
        return [f"{path} must be an object with scaleUp and/or scaleDown"]
    errors = [f"{path}.{k} is not a field of behavior" for k in behavior if k not in ("scaleUp", "scaleDown")]
    for direction in ("scaleUp", "scaleDown"):
        rules = behavior.get(direction)
        if rules is None:
            continue
        where = f"{path}.{direction}"
        if not isinstance(rules, dict):
            errors.append(f"{where} must be an object")
            continue
        errors += [
            f"{where}.{k} is not a field of scaling rules"
            for k in rules
            if k not in ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
        ]
        window = rules.get("stabilizationWindowSeconds")
        if window is not None and (not _type_ok(window, "integer") or not 0 <= window <= 3600):
            errors.append(f"{where}.stabilizationWindowSeconds must be a whole number within 0-3600")
        if rules.get("selectPolicy", "Max") not in ("Max", "Min", "Disabled"):
            errors.append(f"{where}.selectPolicy must be Max, Min or Disabled")
        policies = rules.get("policies", [])
        if not isinstance(policies, list):
            errors.append(f"{where}.policies must be a list")
            continue
        for i, policy in enumerate(policies):
            at = f"{where}.policies[{i}]"
            if not isinstance(policy, dict):
                errors.append(f"{at} must be an object")
                continue
            if policy.get("type") not in ("Pods", "Percent"):
                errors.append(f"{at}.type must be Pods or Percent")
            value, period = policy.get("value"), policy.get("periodSeconds")
            if not _type_ok(value, "integer") or value <= 0:
                errors.append(f"{at}.value must be a whole number above 0")
            if not _type_ok(period, "integer") or not 0 < period <= 1800:
                errors.append(f"{at}.periodSeconds must be a whole number within 1-1800")
            errors += [
                f"{at}.{k} is not a field of a scaling policy"
                for k in policy
                if k not in ("type", "value", "periodSeconds")
            ]
    return errors


def _hpa_errors(spec: dict) -> list[str]:
    errors = []
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not _type_ok(low, "integer") or low < 1:
        errors.append("spec.minReplicas must be a whole number of at least 1")
    if not _type_ok(high, "integer") or not 1 <= high <= MAX_REPLICAS:
        errors.append(f"spec.maxReplicas must be a whole number within 1-{MAX_REPLICAS}")
    for i, metric in enumerate(spec.get("metrics") or []):
        target = _metric_target(metric)
        if target is None:
            errors.append(f"spec.metrics[{i}] has no target")
            continue
        for key in ("averageUtilization",):
            if key in target and (not _type_ok(target[key], "integer") or target[key] < 1):
                errors.append(f"spec.metrics[{i}].target.{key} must be a whole number above 0")
        for key in ("averageValue", "value"):
            if key in target and not _positive_quantity(target[key]):
                errors.append(f"spec.metrics[{i}].target.{key} must be a quantity above 0")
    if "behavior" in spec:
        errors += behavior_errors(spec["behavior"], "spec.behavior")
    return errors


def _metric_target(metric: dict) -> dict | None:
    for source in ("resource", "pods", "object", "external", "containerResource"):
        if isinstance(metric.get(source), dict) and isinstance(metric[source].get("target"), dict):
            return metric[source]["target"]
    return None


def _positive_quantity(value) -> bool:
    if _type_ok(value, "number"):
        return value > 0
    return (
        isinstance(value, str)
        and bool(re.match(r"^\d+(\.\d+)?(m|k|M|G)?$", value))
        and float(re.sub(r"[a-zA-Z]", "", value) or 0) > 0
    )


# ------------------------------------------------------------------ edits


def _refuse(errors: list[str], field_of: dict[str, str]) -> None:
    if not errors:
        return
    first = errors[0]
    name = next((f for prefix, f in field_of.items() if first.startswith(prefix)), "spec")
    raise PolicyEditError("; ".join(errors[:5]), field=name)


def _whole(value, name: str, low: int, high: int) -> int:
    if not _type_ok(value, "integer") or not low <= value <= high:
        raise PolicyEditError(f"{name.replace('_', ' ')} must be a whole number within {low}-{high}", field=name)
    return value


def _threshold(value, name: str) -> str:
    text = str(value).strip() if _type_ok(value, "number") or isinstance(value, str) else ""
    if not _NUMBER.match(text) or float(text) < 0 or (name == "threshold" and float(text) == 0):
        raise PolicyEditError(
            f"triggers {name.replace('_', ' ')} must be a number "
            f"{'above' if name == 'threshold' else 'of at least'} 0, as text or a number",
            field="triggers",
        )
    return text


def gitops_warning(labels: dict, annotations: dict) -> str:
    marks = [k for k in GITOPS_MARKS if k in (labels or {}) or k in (annotations or {})]
    if not marks:
        return ""
    return (
        f"this autoscaler is managed by GitOps ({', '.join(marks)}): its next sync may put the old "
        "values back; change it in Git too"
    )


def _diff(before, after, path: str = "spec") -> list[dict]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += _diff(before.get(key), after.get(key), f"{path}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += _diff(b, a, f"{path}[{i}]")
        return out
    return [] if before == after else [{"path": path, "before": before, "after": after}]


def merge_patch_between(before: dict, after: dict) -> dict:
    """The RFC 7386 merge patch turning `before` into `after`: changed keys only, removed keys as
    null, lists whole (a merge patch replaces lists)."""
    patch: dict = {key: None for key in before if key not in after}
    for key, value in after.items():
        if key in before and before[key] == value:
            continue
        if isinstance(value, dict) and isinstance(before.get(key), dict):
            patch[key] = merge_patch_between(before[key], value)
        else:
            patch[key] = value
    return patch


def scaledobject_edit(
    spec: dict, changes: dict, *, resource_version: str, labels: dict | None = None, annotations: dict | None = None
) -> PolicyEdit:
    """Validate `changes` to a ScaledObject's `spec`; the merge patch and the diff."""
    unknown = sorted(set(changes) - KEDA_FIELDS)
    if unknown:
        raise PolicyEditError(
            f"{unknown[0]} is not a KEDA ScaledObject setting; use {', '.join(sorted(KEDA_FIELDS))}", field=unknown[0]
        )
    new = copy.deepcopy(spec)
    if "min_replicas" in changes:
        new["minReplicaCount"] = _whole(changes["min_replicas"], "min_replicas", 0, MAX_REPLICAS)
    if "max_replicas" in changes:
        new["maxReplicaCount"] = _whole(changes["max_replicas"], "max_replicas", 1, MAX_REPLICAS)
    if "polling_interval_seconds" in changes:
        new["pollingInterval"] = _whole(changes["polling_interval_seconds"], "polling_interval_seconds", 1, 3600)
    if "cooldown_seconds" in changes:
        new["cooldownPeriod"] = _whole(changes["cooldown_seconds"], "cooldown_seconds", 0, 86400)
    if new.get("minReplicaCount", 0) > new.get("maxReplicaCount", 100):
        raise PolicyEditError(
            f"min replicas {new['minReplicaCount']} is above max replicas {new['maxReplicaCount']}",
            field="min_replicas",
        )
    for edit in _list(changes.get("triggers", []), "triggers"):
        triggers = new.get("triggers") or []
        index = edit.get("index") if isinstance(edit, dict) else None
        if not _type_ok(index, "integer") or not 0 <= index < len(triggers):
            raise PolicyEditError(f"triggers index must be within 0-{len(triggers) - 1}", field="triggers")
        extra = sorted(set(edit) - {"index", "threshold", "activation_threshold", "query"})
        if extra:
            raise PolicyEditError(f"triggers {extra[0]} is not a trigger setting", field="triggers")
        metadata = triggers[index].setdefault("metadata", {})
        if "threshold" in edit:
            metadata["threshold"] = _threshold(edit["threshold"], "threshold")
        if "activation_threshold" in edit:
            metadata["activationThreshold"] = _threshold(edit["activation_threshold"], "activation_threshold")
        if "query" in edit:
            if triggers[index].get("type") != "prometheus":
                raise PolicyEditError(
                    f"trigger {index} is {triggers[index].get('type')}: only a prometheus trigger has a query",
                    field="triggers",
                )
            if not isinstance(edit["query"], str) or not edit["query"].strip() or len(edit["query"]) > 2000:
                raise PolicyEditError("triggers query must be PromQL text of 1-2,000 characters", field="triggers")
            metadata["query"] = edit["query"].strip()
    errors = []
    if "behavior" in changes:
        errors += behavior_errors(changes["behavior"], "behavior")
        _refuse(errors, {"behavior": "behavior"})
        advanced = new.setdefault("advanced", {})
        advanced.setdefault("horizontalPodAutoscalerConfig", {})["behavior"] = changes["behavior"]
    errors = schema_errors(new, _keda_schema())
    _refuse(
        errors,
        {
            "spec.minReplicaCount": "min_replicas",
            "spec.maxReplicaCount": "max_replicas",
            "spec.pollingInterval": "polling_interval_seconds",
            "spec.cooldownPeriod": "cooldown_seconds",
            "spec.triggers": "triggers",
            "spec.advanced": "behavior",
        },
    )
    patch = {"metadata": {"resourceVersion": resource_version}, "spec": merge_patch_between(spec, new)}
    return PolicyEdit(
        ReplicaOwnerKind.SCALEDOBJECT, patch, _diff(spec, new), gitops_warning(labels or {}, annotations or {})
    )


def hpa_edit(
    spec: dict, changes: dict, *, resource_version: str, labels: dict | None = None, annotations: dict | None = None
) -> PolicyEdit:
    """Validate `changes` to an autoscaling/v2 HPA's `spec`; the merge patch and the diff."""
    unknown = sorted(set(changes) - HPA_FIELDS)
    if unknown:
        raise PolicyEditError(
            f"{unknown[0]} is not an HPA setting; use {', '.join(sorted(HPA_FIELDS))}", field=unknown[0]
        )
    new = copy.deepcopy(spec)
    if "min_replicas" in changes:
        new["minReplicas"] = _whole(changes["min_replicas"], "min_replicas", 1, MAX_REPLICAS)
    if "max_replicas" in changes:
        new["maxReplicas"] = _whole(changes["max_replicas"], "max_replicas", 1, MAX_REPLICAS)
    if new.get("minReplicas", 1) > new.get("maxReplicas", MAX_REPLICAS):
        raise PolicyEditError(
            f"min replicas {new['minReplicas']} is above max replicas {new['maxReplicas']}", field="min_replicas"
        )
    for edit in _list(changes.get("metrics", []), "metrics"):
        metrics = new.get("metrics") or []
        index = edit.get("index") if isinstance(edit, dict) else None
        if not _type_ok(index, "integer") or not 0 <= index < len(metrics):
            raise PolicyEditError(f"metrics index must be within 0-{len(metrics) - 1}", field="metrics")
        extra = sorted(set(edit) - {"index", "target_value"})
        if extra or "target_value" not in edit:
            raise PolicyEditError("a metrics edit is {index, target_value}", field="metrics")
        target = _metric_target(metrics[index])
        value = edit["target_value"]
        if target is None:
            raise PolicyEditError(f"metric {index} has no target to change", field="metrics")
        if target.get("type") == "Utilization":
            target["averageUtilization"] = value
        elif target.get("type") == "Value":
            target["value"] = value if isinstance(value, str) else str(value)
        else:
            target["averageValue"] = value if isinstance(value, str) else str(value)
    if "behavior" in changes:
        new["behavior"] = changes["behavior"]
    _refuse(
        _hpa_errors(new),
        {
            "spec.minReplicas": "min_replicas",
            "spec.maxReplicas": "max_replicas",
            "spec.metrics": "metrics",
            "spec.behavior": "behavior",
        },
    )
    patch = {"metadata": {"resourceVersion": resource_version}, "spec": merge_patch_between(spec, new)}
    return PolicyEdit(ReplicaOwnerKind.HPA, patch, _diff(spec, new), gitops_warning(labels or {}, annotations or {}))


def _list(value, name: str) -> list:
    if not isinstance(value, list):
        raise PolicyEditError(f"{name} must be a list of edits", field=name)
    return value


def changes_for_candidate(kind: str, policy: dict) -> dict:
    """An advisor candidate's policy (`simulator.advisor.policy_json`) as an edit of the deployment's
    autoscaler of `kind`, trigger / metric 0 carrying its target. Pre-scale rules and the warm pool
    are not autoscaler fields: the caller creates those separately."""
    if policy["kind"] == "static":
        return {"min_replicas": policy["replicas"], "max_replicas": max(1, policy["replicas"])}
    behavior = {"scaleDown": {"stabilizationWindowSeconds": policy["scale_down_stabilization_seconds"]}}
    if policy.get("scale_down_max_pods_per_period"):
        behavior["scaleDown"]["policies"] = [
            {
                "type": "Pods",
                "value": policy["scale_down_max_pods_per_period"],
                "periodSeconds": policy["scale_down_period_seconds"],
            }
        ]
    changes = {"min_replicas": policy["min_replicas"], "max_replicas": policy["max_replicas"], "behavior": behavior}
    if kind == ReplicaOwnerKind.SCALEDOBJECT:
        changes.update(
            polling_interval_seconds=policy["polling_interval_seconds"],
            cooldown_seconds=policy["cooldown_seconds"],
            triggers=[{"index": 0, "threshold": f"{policy['target']:g}"}],
        )
    else:
        target = policy["target"]
        changes["metrics"] = [{"index": 0, "target_value": round(target * 100) if target <= 1 else target}]
    return changes


def apply_merge_patch(target, patch):
    """RFC 7386: `target` with the JSON merge patch `patch` applied (null removes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
