"""Reading a scaling story out of Kubernetes JSON: Events, pod conditions, Karpenter NodeClaims.

The timeline and the measured cold starts are built from three sources the sync already
lists (one list call per kind, never per object):
- Events (`events.k8s.io/v1`, or core/v1 on an API server without it) about Deployments,
  ReplicaSets, Pods, HPAs and ScaledObjects: rescales, scheduling failures, image pulls,
  container starts, kills;
- the conditions of the pods already listed (created, PodScheduled, Ready, deletion) with
  their transition times: Events expire after an hour on most clusters, conditions do not;
- NodeClaims (`karpenter.sh/v1`) with their Launched / Registered / Initialized conditions.

Only facts that belong to a model Deployment (or to a node, which joins a deployment through
the pods scheduled on it) are kept; an Event about anything else is not ScaleDeck's business.
An object that cannot be read is skipped with a warning; it never fails the sync. No
`kubernetes` import: plain dicts in, `ScalingEventFacts` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from fleet.autoscalers import kubernetes_kind
from fleet.backends.base import ClusterSnapshot, KnownOwners, ScalingEventFacts, one_line
from fleet.backends.kubernetes.values import OddObject, Warnings, as_dict, as_list, as_str, parse_time

# Event reason -> timeline kind. Reasons absent here read as "other".
EVENT_KINDS = {
    "SuccessfulRescale": "desired_changed",
    "KEDAScaleTargetActivated": "desired_changed",
    "KEDAScaleTargetDeactivated": "desired_changed",
    "FailedScheduling": "scheduling_failed",
    "Pulling": "image_pulling",
    "Pulled": "image_pulled",
    "Started": "container_started",
    "Killing": "pod_deleted",
}
# Reasons the pod's own conditions already tell, with better times: not stored twice.
COVERED_BY_CONDITIONS = {"Scheduled", "SuccessfulCreate"}
# NodeClaim condition -> timeline kind (Initialized: the node is Ready and its GPUs advertised).
NODECLAIM_KINDS = {"Launched": "nodeclaim_launched", "Registered": "node_registered", "Initialized": "node_ready"}
EVENT_OBJECT_KINDS = {"Pod", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "ScaledObject"}
_SUFFIX = re.compile(r"-[a-z0-9]{1,10}$")
MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class RawEventLists:
    """The items of the extra list calls; `nodeclaims` is None when Karpenter is not installed."""

    events: list
    pods: list
    replicasets: list
    nodeclaims: list | None


def _known_of_snapshot(snapshot: ClusterSnapshot) -> KnownOwners:
    """What a full snapshot says about its model Deployments, as a watched cluster's rows would."""
    return KnownOwners(
        deployments=frozenset((d.namespace, d.name) for d in snapshot.deployments),
        pods={(p.namespace, p.name): p.owner_name for p in snapshot.pods if p.owner_kind == "Deployment"},
        autoscalers={(kubernetes_kind(a.kind), a.namespace, a.name): a.target_name for a in snapshot.autoscalers},
    )


class _Deployments:
    """Which model Deployment an object belongs to, from what the snapshot already knows."""

    def __init__(self, known: KnownOwners, replicasets: Iterable):
        self.names = set(known.deployments)
        self.pods = dict(known.pods)
        self.replicasets: dict[tuple[str, str], str] = {}
        for rs in replicasets:
            meta = as_dict(as_dict(rs).get("metadata"))
            for ref in as_list(meta.get("ownerReferences")):
                ref = as_dict(ref)
                if ref.get("kind") == "Deployment" and ref.get("controller") is True:
                    self.replicasets[(as_str(meta.get("namespace")), as_str(meta.get("name")))] = as_str(
                        ref.get("name")
                    )
        self.autoscalers = dict(known.autoscalers)

    def _stripped(self, namespace: str, name: str, suffixes: int) -> str:
        for _ in range(suffixes):
            name = _SUFFIX.sub("", name)
        return name if (namespace, name) in self.names else ""

    def of(self, kind: str, namespace: str, name: str) -> str:
        """The Deployment's name, or "" when the object is not part of a model Deployment.
        A pod or ReplicaSet already gone from the lists is matched by its generated name."""
        if kind == "Deployment":
            return name if (namespace, name) in self.names else ""
        if kind == "ReplicaSet":
            owner = self.replicasets.get((namespace, name))
            return owner if owner and (namespace, owner) in self.names else self._stripped(namespace, name, 1)
        if kind == "Pod":
            owner = self.pods.get((namespace, name))
            return owner if owner and (namespace, owner) in self.names else self._stripped(namespace, name, 2)
        target = self.autoscalers.get((kind, namespace, name), "")
        return target if (namespace, target) in self.names else ""


def read_events(
    raw: RawEventLists, known: ClusterSnapshot | KnownOwners, warnings: Warnings
) -> list[ScalingEventFacts]:
    """Every scaling fact these lists describe (unordered); odd objects skipped with a warning."""
    if isinstance(known, ClusterSnapshot):
        known = _known_of_snapshot(known)
    owners = _Deployments(known, raw.replicasets)
    out: list[ScalingEventFacts] = []
    for items, read, what in (
        (raw.events, _event, "event"),
        (raw.pods, _pod_conditions, "pod"),
        (raw.nodeclaims or [], _nodeclaim, "nodeclaim"),
    ):
        for obj in items:
            if what == "pod" and not isinstance(obj, dict):
                continue  # the snapshot has warned about it already
            try:
                out += read(as_dict(obj) if isinstance(obj, dict) else _odd("not an object"), owners)
            except OddObject as exc:
                name = as_str(as_dict(as_dict(obj).get("metadata")).get("name")) if isinstance(obj, dict) else ""
                warnings.add(f"skipped {what} {one_line(name, 80) or '(unnamed)'}: {exc}")
            except Exception as exc:  # noqa: BLE001 - one malformed object must never fail the sync
                warnings.add(f"skipped a {what}: cannot be read ({type(exc).__name__})")
    return out


def _odd(why: str):
    raise OddObject(why)


def _event(obj: dict, owners: _Deployments) -> list[ScalingEventFacts]:
    meta = as_dict(obj.get("metadata"))
    uid = as_str(meta.get("uid")) or _odd("no uid")
    # events.k8s.io/v1 names the object `regarding`, core/v1 `involvedObject`.
    regarding = as_dict(obj.get("regarding") or obj.get("involvedObject"))
    object_kind, object_name = as_str(regarding.get("kind")), as_str(regarding.get("name"))
    if not object_kind or not object_name:
        _odd("it does not say which object it is about")
    reason = as_str(obj.get("reason"))
    if object_kind not in EVENT_OBJECT_KINDS or reason in COVERED_BY_CONDITIONS:
        return []
    namespace = as_str(regarding.get("namespace")) or as_str(meta.get("namespace"))
    deployment = owners.of(object_kind, namespace, object_name)
    if not deployment:
        return []
    series = as_dict(obj.get("series"))
    at = (
        parse_time(series.get("lastObservedTime"))
        or parse_time(obj.get("lastTimestamp"))
        or parse_time(obj.get("deprecatedLastTimestamp"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("firstTimestamp"))
        or _odd("no time")
    )
    count = series.get("count") or obj.get("count") or obj.get("deprecatedCount") or 1
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        _odd("its count is not a positive whole number")
    message = one_line(as_str(obj.get("note") or obj.get("message")), MESSAGE_LIMIT)
    kind = EVENT_KINDS.get(reason, "other")
    common = dict(
        namespace=namespace, object_kind=object_kind, object_name=object_name, deployment=deployment, source="event"
    )
    rows = [ScalingEventFacts(uid=uid, count=count, at=at, kind=kind, reason=reason, message=message, **common)]
    if reason == "SuccessfulRescale":
        # The HPA says why it rescaled ("... above target"): the metric crossed its target then.
        crossing = (
            "metric_above_target"
            if "above target" in message
            else ("metric_below_target" if "below target" in message else "")
        )
        if crossing:
            rows.insert(
                0,
                ScalingEventFacts(
                    uid=f"{uid}:metric", count=count, at=at, kind=crossing, reason=reason, message=message, **common
                ),
            )
    return rows


def _pod_conditions(obj: dict, owners: _Deployments) -> list[ScalingEventFacts]:
    meta = as_dict(obj.get("metadata"))
    namespace, name, uid = as_str(meta.get("namespace")), as_str(meta.get("name")), as_str(meta.get("uid"))
    deployment = owners.of("Pod", namespace, name)
    if not deployment:
        return []
    uid = uid or f"{namespace}/{name}"
    node = as_str(as_dict(obj.get("spec")).get("nodeName"))

    def fact(kind: str, reason: str, at, message: str, key: str, node_name: str = "") -> ScalingEventFacts:
        return ScalingEventFacts(
            uid=f"pod:{uid}:{key}:{at.isoformat()}",
            count=1,
            at=at,
            kind=kind,
            reason=reason,
            namespace=namespace,
            object_kind="Pod",
            object_name=name,
            message=message,
            source="pod",
            deployment=deployment,
            node_name=node_name,
        )

    rows = []
    created = parse_time(meta.get("creationTimestamp"))
    if created is not None:
        rows.append(fact("pod_created", "Created", created, "pod created", "created"))
    for condition in as_list(as_dict(obj.get("status")).get("conditions")):
        condition = as_dict(condition)
        at = parse_time(condition.get("lastTransitionTime"))
        if condition.get("status") != "True" or at is None:
            continue
        if condition.get("type") == "PodScheduled":
            rows.append(
                fact(
                    "pod_scheduled",
                    "Scheduled",
                    at,
                    f"scheduled on {one_line(node, 100)}" if node else "scheduled",
                    "PodScheduled",
                    node,
                )
            )
        elif condition.get("type") == "Ready":
            rows.append(fact("pod_ready", "Ready", at, "ready: serving", "Ready"))
    deleted = parse_time(meta.get("deletionTimestamp"))
    if deleted is not None:
        rows.append(fact("pod_deleted", "Deleting", deleted, "pod deleted", "deleted"))
    return rows


def _nodeclaim(obj: dict, owners: _Deployments) -> list[ScalingEventFacts]:
    meta = as_dict(obj.get("metadata"))
    name = as_str(meta.get("name")) or _odd("no name")
    uid = as_str(meta.get("uid")) or name
    status = as_dict(obj.get("status"))
    node = as_str(status.get("nodeName"))
    pool = as_str(as_dict(meta.get("labels")).get("karpenter.sh/nodepool"))
    rows = []
    for condition in as_list(status.get("conditions")):
        condition = as_dict(condition)
        kind = NODECLAIM_KINDS.get(as_str(condition.get("type")))
        at = parse_time(condition.get("lastTransitionTime"))
        if kind is None or condition.get("status") != "True" or at is None:
            continue
        reason = as_str(condition.get("type"))
        where = f" as node {one_line(node, 100)}" if node else ""
        message = {
            "nodeclaim_launched": f"NodeClaim {one_line(name, 100)} launched from pool {one_line(pool, 60) or '?'}",
            "node_registered": f"NodeClaim {one_line(name, 100)} registered{where}",
            "node_ready": f"node {one_line(node or name, 100)} ready",
        }[kind]
        rows.append(
            ScalingEventFacts(
                uid=f"nodeclaim:{uid}:{reason}:{at.isoformat()}",
                count=1,
                at=at,
                kind=kind,
                reason=reason,
                namespace="",
                object_kind="NodeClaim",
                object_name=name,
                message=message,
                source="nodeclaim",
                node_name=node,
                node_pool=pool,
            )
        )
    return rows
