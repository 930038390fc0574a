"""The JSON merge patches ScaleDeck sends, built and checked before any request.

Every write is absolute and carries the resourceVersion it was computed from, so a concurrent
change answers 409 instead of being overwritten. A value that could never be right (a negative
count, min above max, a quota key that is not a GPU entry, a namespace outside the allow-list)
is refused here with a `BackendError`, so the API server never sees it. No `kubernetes` import.
"""

from __future__ import annotations

import re

from fleet.backends.base import UNCHANGED, BackendError, one_line
from fleet.backends.kubernetes.autoscaling import PAUSED_REPLICAS, is_gpu_quota_key
from fleet.backends.kubernetes.values import MAX_COUNT

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def check_target(namespace: object, name: object, *, allow_list: tuple[str, ...], write: bool) -> None:
    """Refuse a malformed name, and a namespace the allow-list does not cover (an empty list
    allows reads everywhere and writes nowhere)."""
    if not isinstance(namespace, str) or not _NAME.match(namespace) or len(namespace) > 63:
        raise BackendError(f"{one_line(namespace, 80)!r} is not a namespace name")
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
        raise BackendError(f"{one_line(name, 80)!r} is not an object name")
    if write and namespace not in allow_list:
        hint = "" if allow_list else " (the allow-list is empty: this cluster is read-only)"
        raise BackendError(f"namespace {namespace} is not in this cluster's allow-list{hint}")
    if not write and allow_list and namespace not in allow_list:
        raise BackendError(f"namespace {namespace} is not in this cluster's allow-list")


def _count(value: object, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COUNT:
        shown = one_line(value, 20)
        raise BackendError(f"{what} must be a whole number from {minimum} to {MAX_COUNT}, not {shown}")
    return value


def _guard(resource_version: object) -> dict:
    if not isinstance(resource_version, str) or not resource_version or len(resource_version) > 64:
        raise BackendError("a write needs the resourceVersion its values were read at")
    return {"resourceVersion": resource_version}


def _given(value: object) -> bool:
    return value is not UNCHANGED and value is not None


def scale_patch(replicas: object, *, resource_version: object) -> dict:
    """For a Deployment's /scale subresource."""
    return {"metadata": _guard(resource_version), "spec": {"replicas": _count(replicas, "replicas")}}


def scaledobject_patch(
    what: str, *, resource_version: object, min_replicas=UNCHANGED, max_replicas=UNCHANGED, paused_replicas=UNCHANGED
) -> dict:
    """min/max left UNCHANGED (or None) are not touched; paused_replicas None removes the pin."""
    spec = {}
    if _given(min_replicas):
        spec["minReplicaCount"] = _count(min_replicas, "minReplicaCount")
    if _given(max_replicas):
        spec["maxReplicaCount"] = _count(max_replicas, "maxReplicaCount", 1)
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", MAX_COUNT):
        raise BackendError("minReplicaCount cannot be above maxReplicaCount")
    body: dict = {"metadata": _guard(resource_version)}
    if paused_replicas is not UNCHANGED:
        pin = None if paused_replicas is None else str(_count(paused_replicas, "paused replicas"))
        body["metadata"]["annotations"] = {PAUSED_REPLICAS: pin}  # null removes it (merge patch)
    if spec:
        body["spec"] = spec
    if len(body) == 1 and "annotations" not in body["metadata"]:
        raise BackendError(f"nothing to change on {what}")
    return body


def hpa_patch(what: str, *, resource_version: object, min_replicas=UNCHANGED, max_replicas=UNCHANGED) -> dict:
    spec = {}
    if _given(min_replicas):
        spec["minReplicas"] = _count(min_replicas, "minReplicas")
    if _given(max_replicas):
        spec["maxReplicas"] = _count(max_replicas, "maxReplicas", 1)
    if not spec:
        raise BackendError(f"nothing to change on {what}")
    if spec.get("minReplicas", 0) > spec.get("maxReplicas", MAX_COUNT):
        raise BackendError("minReplicas cannot be above maxReplicas")
    return {"metadata": _guard(resource_version), "spec": spec}


def quota_patch(hard: object, *, resource_version: object) -> dict:
    """GPU entries of spec.hard only; a merge patch keeps the quota's other entries."""
    if not isinstance(hard, dict) or not hard:
        raise BackendError("a quota change needs at least one entry")
    for key in hard:
        if not isinstance(key, str) or not is_gpu_quota_key(key):
            raise BackendError(
                f"{one_line(key, 80)!r} is not a GPU quota entry (requests.nvidia.com/gpu, "
                "requests.nvidia.com/mig-<profile>)"
            )
    # None removes the entry: null in a merge patch deletes the key.
    entries = {key: None if value is None else str(_count(value, key)) for key, value in hard.items()}
    return {"metadata": _guard(resource_version), "spec": {"hard": entries}}
