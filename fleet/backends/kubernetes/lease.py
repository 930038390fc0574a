"""A coordination.k8s.io/v1 Lease: which watcher keeps a cluster current, said to Kubernetes too.

Taken and renewed with optimistic concurrency, as client-go's leader election does: read the
Lease; create it when absent; replace it (carrying the resourceVersion read) when it is ours,
free, or expired (`renewTime` + `leaseDurationSeconds` in the past). A 409 on the create or
the replace means another watcher wrote first: it holds the lease, we do not.

The calls go through the client's `CustomObjectsApi` (plain JSON bodies on the same
/apis/coordination.k8s.io/v1 paths), not `CoordinationV1Api`: that one turns a body into its
`V1Lease` model and writes `renewTime` back with `isoformat()`, which drops the microseconds when
they are 0, and the API server only parses a MicroTime with all six digits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client as k8s

from fleet.backends.base import BackendError, ConflictError
from fleet.backends.kubernetes.connection import ApiCall, KubernetesConnection
from fleet.backends.kubernetes.values import as_dict, as_str


def _micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lease_is_free(spec: dict, *, holder: str, now: datetime) -> bool:
    """Whether `holder` may take a Lease with this spec at `now`: it holds it already, nobody
    does, or its holder stopped renewing more than `leaseDurationSeconds` ago."""
    current = as_str(spec.get("holderIdentity"))
    if current in ("", holder):
        return True
    renewed = _parse_micro_time(as_str(spec.get("renewTime")))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return True  # a Lease nobody keeps properly is nobody's
    return renewed + timedelta(seconds=duration) < now


class KubernetesLease(KubernetesConnection):
    """Holding a Lease object (see the module docstring)."""

    def lease_hold(self, *, name: str, namespace: str, holder: str, duration_seconds: int, now: datetime) -> bool:
        """Take or renew the Lease `namespace`/`name` for `holder`; False when another live holder
        has it (or won the race to write it). Other failures raise `BackendError`."""
        leases = k8s.CustomObjectsApi(self._api())
        where = ("coordination.k8s.io", "v1", namespace, "leases")
        try:
            current = self._call(
                ApiCall("get", "leases.coordination.k8s.io", namespace, name),
                leases.get_namespaced_custom_object,
                *where,
                name,
            )
        except BackendError as exc:
            if exc.status != 404:
                raise
            current = None
        spec = {
            "holderIdentity": holder,
            "leaseDurationSeconds": int(duration_seconds),
            "renewTime": _micro_time(now),
        }
        try:
            if current is None:
                spec.update(acquireTime=_micro_time(now), leaseTransitions=0)
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name},
                    "spec": spec,
                }
                self._call(
                    ApiCall("create", "leases.coordination.k8s.io", namespace, name),
                    leases.create_namespaced_custom_object,
                    *where,
                    body,
                )
                return True
            old = as_dict(current.get("spec"))
            if not lease_is_free(old, holder=holder, now=now):
                return False
            if as_str(old.get("holderIdentity")) == holder:
                spec["acquireTime"] = old.get("acquireTime") or _micro_time(now)
                spec["leaseTransitions"] = old.get("leaseTransitions") or 0
            else:
                transitions = old.get("leaseTransitions")
                spec.update(
                    acquireTime=_micro_time(now),
                    leaseTransitions=(transitions if isinstance(transitions, int) else 0) + 1,
                )
            metadata = as_dict(current.get("metadata"))
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": as_str(metadata.get("resourceVersion")),
                },
                "spec": spec,
            }
            self._call(
                ApiCall("update", "leases.coordination.k8s.io", namespace, name),
                leases.replace_namespaced_custom_object,
                *where,
                name,
                body,
            )
            return True
        except ConflictError:
            return False
