"""The simulated cluster's scaling story, in the same vocabulary the Kubernetes backend reads.

A simulated world keeps what a real cluster's Events, pod conditions and NodeClaims say: each
pod's created / scheduled / pulled / ready times, each node's launch and ready times, and a log
of autoscaler rescales, quota refusals, launches and evictions. This turns them into
`ScalingEventFacts`, so the demo's timeline and cold starts tell the same story as a real
cluster's (the uids are stable, so a re-sync stores nothing twice).
"""

from __future__ import annotations

from fleet.backends.base import ScalingEventFacts
from simulator import World
from simulator.world import from_epoch

_WORLD_EVENTS = {
    # reason in the world's log -> (kind, object kind)
    "FailedCreate": ("scheduling_failed", "ReplicaSet"),
    "Launched": ("nodeclaim_launched", "NodeClaim"),
    "NodeReady": ("node_ready", "NodeClaim"),
    "Evicted": ("pod_deleted", "Pod"),
    "Consolidated": ("other", "NodeClaim"),
}


def _fact(
    t: int,
    kind: str,
    reason: str,
    namespace: str,
    object_kind: str,
    name: str,
    message: str,
    *,
    deployment: str = "",
    node: str = "",
    pool: str = "",
    uid: str = "",
) -> ScalingEventFacts:
    return ScalingEventFacts(
        uid=uid or f"sim:{t}:{reason}:{object_kind}/{namespace}/{name}",
        count=1,
        at=from_epoch(t),
        kind=kind,
        reason=reason,
        namespace=namespace,
        object_kind=object_kind,
        object_name=name,
        message=message,
        source="simulator",
        deployment=deployment,
        node_name=node,
        node_pool=pool,
    )


def world_events(world: World) -> list[ScalingEventFacts]:
    """Everything the world can say about scaling up to its current time."""
    out: list[ScalingEventFacts] = []
    # deployment key -> (start of its oldest kept minute, ends of the minutes that served requests)
    served: dict[str, tuple[int, list[int]]] = {}
    for pod in world.pods.values():
        out += _pod_story(world, pod)
        if pod.ready_at is None or pod.ready_at > world.t:
            continue
        key = f"{pod.namespace}/{pod.deployment}"
        if key not in served:
            rows = world.history.rows(key)
            served[key] = (
                rows[0]["at"] - 60 if rows else world.t,
                [r["at"] for r in rows if (r.get("requests_per_second") or 0) > 0],
            )
        kept_from, ends = served[key]
        first = next((end for end in ends if end > pod.ready_at), None)
        if first is not None and kept_from <= pod.ready_at:  # a Ready replica takes its share at once
            at = max(pod.ready_at, first - 60)
            out.append(
                _fact(
                    at,
                    "first_token",
                    "FirstToken",
                    pod.namespace,
                    "Pod",
                    pod.name,
                    f"first token served, {at - pod.ready_at} s after Ready",
                    deployment=pod.deployment,
                    uid=f"sim:first-token:{pod.namespace}/{pod.name}",
                )
            )
    for t, reason, obj, message in world.events:
        kind_name, _, path = obj.partition("/")
        if reason in ("ScaledUp", "ScaledDown") and kind_name == "Deployment":
            namespace, _, name = path.partition("/")
            crossing = "metric_above_target" if reason == "ScaledUp" else "metric_below_target"
            out.append(
                _fact(
                    t,
                    crossing,
                    reason,
                    namespace,
                    "Deployment",
                    name,
                    message,
                    deployment=name,
                    uid=f"sim:{t}:{reason}:metric:{path}",
                )
            )
            out.append(_fact(t, "desired_changed", reason, namespace, "Deployment", name, message, deployment=name))
        elif reason in _WORLD_EVENTS:
            kind, object_kind = _WORLD_EVENTS[reason]
            if object_kind == "NodeClaim":
                node = world.nodes.get(path)
                pool = node.pool if node is not None else message.split(":", 1)[0]
                out.append(_fact(t, kind, reason, "", object_kind, path, message, node=path, pool=pool))
            else:
                namespace, _, name = path.partition("/")
                deployment = _deployment_of(world, namespace, name, object_kind)
                if deployment:
                    out.append(_fact(t, kind, reason, namespace, object_kind, name, message, deployment=deployment))
    return out


def _deployment_of(world: World, namespace: str, name: str, object_kind: str) -> str:
    for dep in world.deployments.values():
        if dep.namespace != namespace:
            continue
        if (object_kind == "ReplicaSet" and name == world.replica_set_name(dep)) or (
            object_kind == "Pod" and name.startswith(world.replica_set_name(dep) + "-")
        ):
            return dep.name
    return ""


def _pod_story(world: World, pod) -> list[ScalingEventFacts]:
    now = world.t
    common = dict(deployment=pod.deployment)
    ns, name = pod.namespace, pod.name
    rows = [_fact(pod.created_at, "pod_created", "Created", ns, "Pod", name, "pod created", **common)]
    waited = pod.scheduled_at is None or pod.scheduled_at > pod.created_at
    if waited and pod.created_at + world.step_seconds <= now:
        rows.append(
            _fact(
                pod.created_at,
                "scheduling_failed",
                "FailedScheduling",
                ns,
                "Pod",
                name,
                "no node has a free GPU of the kind it needs: Insufficient GPU",
                **common,
            )
        )
    steps = [
        (pod.scheduled_at, "pod_scheduled", "Scheduled", f"scheduled on {pod.node}"),
        (pod.scheduled_at, "image_pulling", "Pulling", f"pulling image on {pod.node}"),
        (pod.pulled_at, "image_pulled", "Pulled", "image pulled"),
        (pod.pulled_at, "container_started", "Started", "container started: loading model weights"),
        (pod.ready_at, "pod_ready", "Ready", "model loaded, serving"),
    ]
    for t, kind, reason, message in steps:
        if t is not None and pod.node and t <= now:
            node = pod.node if kind == "pod_scheduled" else ""
            rows.append(_fact(t, kind, reason, ns, "Pod", name, message, node=node, **common))
    return rows
