"""What the fake Kubernetes API serves: the resource types it knows, a stored object, and the
Status bodies of the errors it answers with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    custom: bool = False  # a CRD: no strategic merge, list items keep kind/apiVersion

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = (
    Resource("", "v1", "nodes", "Node", namespaced=False),
    Resource("", "v1", "pods", "Pod", namespaced=True),
    Resource("", "v1", "resourcequotas", "ResourceQuota", namespaced=True),
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "configmaps", "ConfigMap", namespaced=True),
    Resource("apps", "v1", "deployments", "Deployment", namespaced=True),
    Resource("apps", "v1", "replicasets", "ReplicaSet", namespaced=True),
    Resource("apps", "v1", "statefulsets", "StatefulSet", namespaced=True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", namespaced=True),
    Resource("batch", "v1", "jobs", "Job", namespaced=True),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", namespaced=True),
    Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", namespaced=True, custom=True),
    Resource("karpenter.sh", "v1", "nodepools", "NodePool", namespaced=False, custom=True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", namespaced=True),
    Resource("events.k8s.io", "v1", "events", "Event", namespaced=True),
    Resource("", "v1", "events", "Event", namespaced=True),
    Resource("karpenter.sh", "v1", "nodeclaims", "NodeClaim", namespaced=False, custom=True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True),
)
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PARTIAL_METADATA = "as=PartialObjectMetadataList"


@dataclass
class _Entry:
    obj: dict
    resource: Resource
    raw: bool = False  # loaded as-is: served in lists exactly as given, no bookkeeping
    _item_json: bytes | None = field(default=None, repr=False)

    def item_json(self) -> bytes:
        # Serialised once, then reused by every list page: a 20,000-pod list stays cheap to serve.
        if self._item_json is None:
            item = self.obj
            if not self.raw and not self.resource.custom and isinstance(item, dict):
                # Built-in list items carry no kind/apiVersion, as from a real API server.
                item = {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
            self._item_json = json.dumps(item, separators=(",", ":")).encode()
        return self._item_json


class _ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}

    def body(self) -> dict:
        return status_body(self.status, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
