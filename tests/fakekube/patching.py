"""How the fake Kubernetes API changes and checks objects: merge and JSON patches, the scale
subresource, the few validations the real API server makes on what ScaleDeck writes, selectors."""

from __future__ import annotations

import copy
import json

from tests.fakekube.resources import Resource, _ApiError


def _node_name_selector(selector: str) -> str | None:
    """The node of `fieldSelector=spec.nodeName=X` (the only field selector modelled)."""
    key, _, value = selector.partition("=")
    return value if key == "spec.nodeName" else None


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _default_message(status: int, method: str, path: str) -> str:
    if status == 403:
        segments = [s for s in path.split("/") if s]
        namespace = segments[segments.index("namespaces") + 1] if "namespaces" in segments[:-1] else ""
        if segments[-1] == "scale":
            plural = f"{segments[-3]}/scale"
        else:
            plural = segments[-1] if method == "GET" else segments[-2] if len(segments) >= 2 else "resource"
        verb = {"GET": "list", "PATCH": "patch"}.get(method, method.lower())
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        return (
            f'{plural} is forbidden: User "system:serviceaccount:scaledeck:scaledeck" cannot {verb} '
            f'resource "{plural}" in API group ""{where}'
        )
    if status == 401:
        return "Unauthorized"
    if status == 410:
        return "The provided continue parameter is too old to display a consistent list result."
    return f"fake failure {status}"


def _scale_of(deployment: dict) -> dict:
    meta = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }


def _merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_json_patch(target: dict, ops: list) -> dict:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise _ApiError(422, "Invalid", "a JSON patch operation needs op and path")
        parts = _pointer(op["path"])
        if not parts:
            raise _ApiError(422, "Invalid", "the fake API server cannot patch the document root")
        parent = doc
        for part in parts[:-1]:
            if isinstance(parent, dict) and part in parent:
                parent = parent[part]
            elif isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
                parent = parent[int(part)]
            else:
                raise _ApiError(422, "Invalid", f"path {op['path']} does not exist")
        last = parts[-1]
        kind = op.get("op")
        if kind == "test":
            actual = parent.get(last) if isinstance(parent, dict) else None
            if actual != op.get("value"):
                raise _ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, dict):
                if kind == "replace" and last not in parent:
                    raise _ApiError(422, "Invalid", f"replace operation does not apply: {op['path']} is missing")
                parent[last] = copy.deepcopy(op.get("value"))
            elif isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, copy.deepcopy(op.get("value")))
                else:
                    parent[index] = copy.deepcopy(op.get("value"))
        elif kind == "remove":
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
                del parent[int(last)]
            else:
                raise _ApiError(422, "Invalid", f"remove operation does not apply: {op['path']} is missing")
        else:
            raise _ApiError(422, "Invalid", f"the fake API server does not support JSON patch op {kind!r}")
    return doc


def _check_replicas(value: object, field_name: str, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _ApiError(
            422,
            "Invalid",
            f"{field_name}: Invalid value: {json.dumps(value)}: must be greater than or equal to {minimum}",
        )


def _validate(resource: Resource, obj: dict) -> None:
    spec = obj.get("spec") or {}
    if resource.kind == "Deployment" and "replicas" in spec:
        _check_replicas(spec["replicas"], "spec.replicas")
    elif resource.kind == "HorizontalPodAutoscaler":
        _check_replicas(spec.get("minReplicas", 1), "spec.minReplicas", 1)
        _check_replicas(spec.get("maxReplicas"), "spec.maxReplicas", 1)
        if spec["maxReplicas"] < spec.get("minReplicas", 1):
            raise _ApiError(
                422, "Invalid", "spec.maxReplicas: Invalid value: must be greater than or equal to minReplicas"
            )
    elif resource.kind == "ScaledObject":
        if "minReplicaCount" in spec:
            _check_replicas(spec["minReplicaCount"], "spec.minReplicaCount")
        if "maxReplicaCount" in spec:
            _check_replicas(spec["maxReplicaCount"], "spec.maxReplicaCount", 1)
    elif resource.kind == "ResourceQuota":
        for key, value in (spec.get("hard") or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise _ApiError(422, "Invalid", f"spec.hard[{key}]: Invalid value: must be a quantity")
