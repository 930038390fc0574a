"""The simulated backends: a `simulator.World` behind the ClusterBackend and MetricsBackend protocols.

The world lives in a `WorldStore` (the Django side keeps it in the database; tests use
`InMemoryWorldStore`). Each call loads it and advances it to the clock's now, so the cluster
moves on between page loads as a real one would. The cluster backend saves what it advanced
(and its writes); the metrics backend advances a throwaway copy and never saves, so reading
metrics cannot race a write.

Facts read the way a real cluster's labels and capacity would: a MIG node keeps gpu_count 8
and advertises `nvidia.com/gpu: 0` next to its `nvidia.com/mig-<profile>` counts; a node
still launching has Karpenter's labels but no GPU labels and no GPU capacity yet; a KEDA
ScaledObject comes with the `keda-hpa-<name>` HPA it owns, unless paused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Protocol

from fleet.backends.base import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    UNCHANGED,
    AutoscalerFacts,
    BackendError,
    ClusterSnapshot,
    ConflictError,
    DeploymentFacts,
    DeploymentMetrics,
    DeploymentRef,
    GpuUtilization,
    NodeFacts,
    NodePoolFacts,
    ObjectState,
    PodFacts,
    QuotaFacts,
    ScalingEventFacts,
    Series,
    Taint,
)
from fleet.backends.sim_events import world_events
from simulator import KEEP, SimConflict, SimInvalid, SimNotFound, World
from simulator.mig import gpu_model, mig_counts
from simulator.objects import (
    LAUNCHING,
    LOADING,
    NODE_READY,
    PENDING,
    PULLING,
    READY,
    RECONFIGURING,
    Deployment,
    Node,
)
from simulator.world import from_epoch

Clock = Callable[[], datetime]

NOT_READY_TAINT = Taint("node.kubernetes.io/not-ready", "", "NoSchedule")
GPU_TAINT = Taint("nvidia.com/gpu", "true", "NoSchedule")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WorldStore(Protocol):
    """Where the simulated world is kept between calls.

    `load` then `save` is a read-modify-write: a store shared by several processes must
    serialize it, or a write made between another caller's load and save is lost. A store
    may offer `atomic()`, a context manager holding its lock (e.g. `transaction.atomic()` around
    a `SELECT ... FOR UPDATE` load); the cluster backend runs every load-advance-save inside it.
    """

    def load(self) -> World: ...

    def save(self, world: World) -> None: ...


class InMemoryWorldStore:
    """Keeps the world as JSON text, so every load is a fresh copy, exactly like a database row."""

    def __init__(self, world: World):
        self._json = ""
        self.save(world)

    def load(self) -> World:
        return World.from_dict(json.loads(self._json))

    def save(self, world: World) -> None:
        self._json = json.dumps(world.to_dict(), separators=(",", ":"))

    @property
    def size_bytes(self) -> int:
        return len(self._json)


def _rv(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConflictError(f"resource_version {value!r} is not one this cluster issued")


def _translate(error: Exception) -> BackendError:
    if isinstance(error, SimConflict):
        return ConflictError(str(error))
    if isinstance(error, SimNotFound):
        return BackendError(str(error), status=404)
    return BackendError(str(error), status=422)


# --------------------------------------------------------------------------- facts


def _node_facts(world: World, node: Node) -> NodeFacts:
    pool = world.pools[node.pool]
    registered = node.status != LAUNCHING
    capacity: dict[str, int] = {}
    if registered:
        migs = mig_counts(pool.gpu_product, node.mig_layout, pool.gpus_per_node)
        capacity[GPU_RESOURCE] = 0 if migs else pool.gpus_per_node
        capacity.update({f"{MIG_RESOURCE_PREFIX}{profile}": n for profile, n in migs.items()})
    ready = node.status == NODE_READY
    return NodeFacts(
        name=node.name,
        instance_type=pool.instance_type,
        zone=node.zone,
        region=pool.region,
        node_pool=pool.name,
        capacity_type=pool.capacity_type,
        gpu_product=pool.gpu_product if registered else "",
        gpu_count=pool.gpus_per_node if registered else 0,
        gpu_memory_mib=(gpu_model(pool.gpu_product).memory_mib or pool.gpu_memory_mib) if registered else 0,
        mig_config=node.mig_layout if registered else None,
        mig_strategy="mixed" if registered and node.mig_layout else None,
        capacity=capacity,
        # While mig-manager repartitions, the device plugin advertises nothing allocatable.
        allocatable=dict(capacity) if ready else {key: 0 for key in capacity},
        ready=registered,
        unschedulable=node.unschedulable,
        taints=(GPU_TAINT,) if registered else (GPU_TAINT, NOT_READY_TAINT),
        created_at=from_epoch(node.launched_at),
    )


_WAITING = {PENDING: "waiting for a node", PULLING: "pulling image", LOADING: "loading model weights", READY: ""}


def _pod_facts(world: World, pod) -> PodFacts:
    dep = world.deployments[f"{pod.namespace}/{pod.deployment}"]
    return PodFacts(
        namespace=pod.namespace,
        name=pod.name,
        node_name=pod.node,
        phase="Pending" if pod.status in (PENDING, PULLING) else "Running",
        ready=pod.status == READY,
        started_at=from_epoch(pod.scheduled_at) if pod.scheduled_at is not None else None,
        gpu_requests={dep.gpu_resource: dep.gpu_per_replica},
        restarts=0,
        owner_kind="Deployment",
        owner_name=dep.name,
        waiting_reason=_WAITING[pod.status],
    )


def _deployment_facts(world: World, dep: Deployment, pods: int) -> DeploymentFacts:
    manifest = dep.manifest
    return DeploymentFacts(
        namespace=dep.namespace,
        name=dep.name,
        model=dep.model,
        image=dep.image,
        replicas_desired=dep.replicas,
        replicas_ready=dep.ready_replicas,
        replicas_updated=pods,
        replicas_available=dep.ready_replicas,
        gpu_resource=dep.gpu_resource,
        gpu_per_replica=dep.gpu_per_replica,
        tensor_parallel=dep.tensor_parallel,
        max_model_len=manifest.get("max_model_len"),
        gpu_memory_utilization=manifest.get("gpu_memory_utilization"),
        rollout_condition=(
            "ReplicaFailure: FailedCreate" if dep.failed_create else "Progressing: NewReplicaSetAvailable"
        ),
        termination_grace_seconds=manifest.get("termination_grace_seconds"),
        liveness_initial_delay_seconds=manifest.get("liveness_initial_delay_seconds"),
        readiness_initial_delay_seconds=manifest.get("readiness_initial_delay_seconds"),
        max_unavailable=str(manifest.get("max_unavailable", "")),
        max_surge=str(manifest.get("max_surge", "")),
        resource_version=str(dep.resource_version),
        labels=dict(dep.labels),
    )


def _autoscaler_facts(world: World) -> list[AutoscalerFacts]:
    facts = []
    for a in world.autoscalers.values():
        facts.append(AutoscalerFacts(
            kind=a.kind, name=a.name, target_name=a.target, min_replicas=a.min_replicas,
            max_replicas=a.max_replicas, metric=a.summary(), paused_replicas=a.paused_replicas,
            resource_version=str(a.resource_version),
        ))
        if a.kind == "keda" and a.paused_replicas is None:
            # KEDA creates and owns an HPA for every active ScaledObject.
            facts.append(AutoscalerFacts(
                kind="hpa", name=f"keda-hpa-{a.name}", target_name=a.target, min_replicas=max(1, a.min_replicas),
                max_replicas=a.max_replicas, metric=f"external s0-prometheus (from ScaledObject {a.name})",
                resource_version=str(a.resource_version), owned_by_scaledobject=a.name,
            ))
    return facts


def cluster_snapshot(world: World) -> ClusterSnapshot:
    """Everything a full sync sees, read off a world at its current time."""
    pods: dict[str, int] = {}
    for pod in world.pods.values():
        key = f"{pod.namespace}/{pod.deployment}"
        pods[key] = pods.get(key, 0) + 1
    return ClusterSnapshot(
        taken_at=world.now,
        nodes=tuple(_node_facts(world, n) for n in world.nodes.values()),
        pods=tuple(_pod_facts(world, p) for p in world.pods.values()),
        deployments=tuple(_deployment_facts(world, d, pods.get(d.key, 0)) for d in world.deployments.values()),
        autoscalers=tuple(_autoscaler_facts(world)),
        quotas=tuple(
            QuotaFacts(q.namespace, q.name, dict(q.hard), dict(q.used), str(q.resource_version))
            for q in world.quotas.values()
        ),
        node_pools=tuple(
            NodePoolFacts(p.name, (p.instance_type,), (p.capacity_type,), p.max_nodes * p.gpus_per_node, "WhenEmpty")
            for p in world.pools.values()
        ),
        keda_installed=True,
        events=tuple(world_events(world)),
    )


# --------------------------------------------------------------------------- cluster backend


class SimulatedClusterBackend:
    """ClusterBackend over a simulated world, plus the writes the scaling code issues."""

    def __init__(self, store: WorldStore, *, clock: Clock = _utc_now):
        self.store = store
        self.clock = clock

    def _locked(self) -> AbstractContextManager:
        atomic = getattr(self.store, "atomic", None)
        return atomic() if atomic is not None else nullcontext()

    def _current(self) -> World:
        world = self.store.load()
        world.advance_to(self.clock())
        return world

    def snapshot(self) -> ClusterSnapshot:
        with self._locked():
            world = self._current()
            self.store.save(world)
        return cluster_snapshot(world)

    def scaling_events(self, known=None) -> tuple[list[ScalingEventFacts], list[str]]:
        """The world's story only (fleet.events.watched_cluster_events_record); `known` is not
        needed: the world knows which deployment each pod and node belongs to."""
        with self._locked():
            world = self._current()
            self.store.save(world)
        return world_events(world), []

    def gpu_assignments(self) -> list[tuple[str, int, str | None, int | None, str, str]]:
        """(node, gpu index, MIG profile, MIG instance id, pod namespace, pod name) per held device.

        Read from the world as last saved, without advancing it, so that right after
        `snapshot()` it describes exactly the pods that snapshot listed."""
        world = self.store.load()
        rows = []
        for pod in world.pods.values():
            for gpu_index, profile, instance_id in pod.devices:
                rows.append((pod.node, gpu_index, profile, instance_id, pod.namespace, pod.name))
        return sorted(rows, key=lambda r: (r[0], r[1], r[3] or 0))

    def recent_events(self, limit: int = 100) -> list[tuple[datetime, str, str, str]]:
        """The cluster's latest events (scaling, FailedCreate, node launches), oldest first."""
        world = self.store.load()
        return [(from_epoch(t), reason, obj, message) for t, reason, obj, message in world.events[-limit:]]

    def _write(self, apply: Callable[[World], int]) -> str:
        with self._locked():
            world = self._current()
            try:
                version = apply(world)
            except (SimConflict, SimNotFound, SimInvalid) as error:
                raise _translate(error)
            self.store.save(world)
        return str(version)

    def set_autoscaler_bounds(self, namespace: str, name: str, *, min_replicas: int | None = None,
                              max_replicas: int | None = None, paused_replicas=KEEP,
                              expected_resource_version: str | int | None = None) -> str:
        """Patch a ScaledObject/HPA's min/max (and KEDA paused-replicas; None clears it)."""
        expected = _rv(expected_resource_version)
        return self._write(lambda w: w.set_autoscaler(
            namespace, name, min_replicas=min_replicas, max_replicas=max_replicas,
            paused_replicas=paused_replicas, expected_resource_version=expected))

    def scale_deployment(self, namespace: str, name: str, replicas: int, *,
                         expected_resource_version: str | int | None = None,
                         resource_version: str | None = None) -> str:
        """Write spec.replicas through /scale (an autoscaler, if any, overwrites it soon after).

        `resource_version` is the ClusterWriter spelling of `expected_resource_version`; with it
        the namespace allow-list is enforced as the protocol requires."""
        if resource_version is not None:
            self._check_writable(namespace)
        expected = _rv(resource_version if resource_version is not None else expected_resource_version)
        return self._write(lambda w: w.scale_deployment(
            namespace, name, replicas, expected_resource_version=expected))

    def set_quota(self, namespace: str, name: str, hard: dict[str, int], *,
                  expected_resource_version: str | int | None = None) -> str:
        expected = _rv(expected_resource_version)
        return self._write(lambda w: w.set_quota(namespace, name, hard, expected_resource_version=expected))

    def set_mig_config(self, node_name: str, layout: str, *,
                       expected_resource_version: str | int | None = None) -> str:
        expected = _rv(expected_resource_version)
        return self._write(lambda w: w.set_mig_config(node_name, layout, expected_resource_version=expected))

    # ------------------------------------------------------------------ nodes (MIG repartitioning)
    # The calls of KubernetesClusterBackend, over the simulated world: the mig-manager there is the
    # world's own (relabelling starts a reconfiguration of MIG_RECONFIGURE_SECONDS).

    def get_node(self, name: str) -> dict:
        """{"unschedulable", "labels", "capacity", "resource_version"}, as the kubernetes backend reads them."""
        with self._locked():
            world = self._current()
            self.store.save(world)
            try:
                node = world.node(name)
            except SimNotFound as error:
                raise _translate(error) from None
            facts = _node_facts(world, node)
        labels = {"nvidia.com/mig.config": node.mig_layout or "all-disabled",
                  "nvidia.com/mig.config.state": "pending" if node.status == RECONFIGURING else "success"}
        return {"unschedulable": node.unschedulable, "labels": labels,
                "capacity": {k: str(v) for k, v in facts.capacity.items()},
                "resource_version": str(node.resource_version)}

    def patch_node(self, name: str, body: dict) -> str:
        """Cordon/uncordon (`spec.unschedulable`) and the `nvidia.com/mig.config` label."""
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        layout = (meta.get("labels") or {}).get("nvidia.com/mig.config")
        expected = _rv(meta.get("resourceVersion"))

        def apply(world: World) -> int:
            version = world.node(name).resource_version
            if "unschedulable" in spec:
                version = world.set_unschedulable(name, bool(spec["unschedulable"]))
            if layout is not None:
                version = world.set_mig_config(name, layout, expected_resource_version=expected)
            return version

        return self._write(apply)

    def node_pods(self, name: str) -> list[dict]:
        world = self.store.load()
        return [{"namespace": p.namespace, "name": p.name, "owner_kind": "ReplicaSet", "phase": "Running",
                 "mirror": False} for p in sorted(world.pods.values(), key=lambda p: p.key) if p.node == name]

    def evict_pod(self, namespace: str, name: str) -> None:
        self._check_writable(namespace)

        def apply(world: World) -> int:
            world.evict_pod(namespace, name)
            return world.t

        self._write(apply)

    # ------------------------------------------------------------------ ClusterWriter (scaling)
    # The protocol of fleet/backends/base.py over the methods above, so that scale actions from
    # the pages, the API and pre-scale rules move the simulated world (the demo reacts to them).

    def _check_writable(self, namespace: str) -> None:
        cluster = getattr(self.store, "cluster", None)  # DbWorldStore knows its Cluster row
        if cluster is not None and not cluster.namespace_writable(namespace):
            raise BackendError(f"namespace {namespace} is not in this cluster's allow-list")

    def read_object(self, kind: str, namespace: str, name: str) -> ObjectState:
        """Current values and resourceVersion of "deployment" | "scaledobject" | "hpa" | "quota"."""
        # Read-only: the world is advanced in memory and not saved; the write that follows
        # advances the saved world to the same instant, deterministically.
        world = self._current()
        try:
            if kind == "deployment":
                dep = world.deployment(namespace, name)
                values, version = {"replicas": dep.replicas}, dep.resource_version
            elif kind in ("scaledobject", "hpa"):
                autoscaler = self._autoscaler(world, kind, namespace, name)
                values = {"min_replicas": autoscaler.min_replicas, "max_replicas": autoscaler.max_replicas}
                if kind == "scaledobject":
                    values["paused_replicas"] = autoscaler.paused_replicas
                version = autoscaler.resource_version
            elif kind == "quota":
                quota = world.quota(namespace, name)
                values, version = {"hard": dict(quota.hard), "used": dict(quota.used)}, quota.resource_version
            else:
                raise BackendError(f"cannot read objects of kind {kind!r}")
        except (SimNotFound, SimInvalid) as error:
            raise _translate(error)
        return ObjectState(kind=kind, namespace=namespace, name=name, values=values, resource_version=str(version))

    @staticmethod
    def _autoscaler(world: World, kind: str, namespace: str, name: str):
        autoscaler = world.autoscaler(namespace, name)
        if autoscaler.kind != ("keda" if kind == "scaledobject" else "hpa"):
            raise SimNotFound(f"{kind} {namespace}/{name} not found")
        return autoscaler

    def _patch_autoscaler(self, kind: str, namespace: str, name: str, resource_version: str,
                          min_replicas, max_replicas, paused_replicas) -> str:
        self._check_writable(namespace)
        expected = _rv(resource_version)

        def apply(world: World) -> int:
            self._autoscaler(world, kind, namespace, name)
            return world.set_autoscaler(
                namespace, name,
                min_replicas=None if min_replicas is UNCHANGED else min_replicas,
                max_replicas=None if max_replicas is UNCHANGED else max_replicas,
                paused_replicas=KEEP if paused_replicas is UNCHANGED else paused_replicas,
                expected_resource_version=expected,
            )

        return self._write(apply)

    def patch_scaledobject(self, namespace: str, name: str, *, resource_version: str, min_replicas=UNCHANGED,
                           max_replicas=UNCHANGED, paused_replicas=UNCHANGED) -> str:
        return self._patch_autoscaler("scaledobject", namespace, name, resource_version, min_replicas,
                                      max_replicas, paused_replicas)

    def patch_hpa(self, namespace: str, name: str, *, resource_version: str, min_replicas=UNCHANGED,
                  max_replicas=UNCHANGED) -> str:
        return self._patch_autoscaler("hpa", namespace, name, resource_version, min_replicas, max_replicas,
                                      UNCHANGED)

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str:
        """Set the given entries of a quota's hard limits; the others are kept (as a merge patch does)."""
        self._check_writable(namespace)
        expected = _rv(resource_version)
        def merged(w) -> dict[str, int]:  # None removes an entry, as null does in a merge patch
            return {k: v for k, v in {**w.quota(namespace, name).hard, **hard}.items() if v is not None}

        return self._write(lambda w: w.set_quota(namespace, name, merged(w), expected_resource_version=expected))


# --------------------------------------------------------------------------- metrics backend

SERIES_UNITS = {
    "ttft_p50": ("ttft_p50_seconds", "s"),
    "ttft_p95": ("ttft_p95_seconds", "s"),
    "ttft_p99": ("ttft_p99_seconds", "s"),
    "itl_p50": ("itl_p50_seconds", "s"),
    "itl_p95": ("itl_p95_seconds", "s"),
    "e2e_p50": ("e2e_p50_seconds", "s"),
    "e2e_p95": ("e2e_p95_seconds", "s"),
    "queue_depth": ("queue_depth", "requests"),
    "running": ("running", "requests"),
    "kv_cache_usage": ("kv_cache_usage", "fraction"),
    "gpu_utilization": ("gpu_utilization", "fraction"),
    "generation_tokens_per_second": ("generation_tokens_per_second", "tokens/s"),
    "prompt_tokens_per_second": ("prompt_tokens_per_second", "tokens/s"),
    "arrivals_per_second": ("arrivals_per_second", "requests/s"),
    "requests_per_second": ("requests_per_second", "requests/s"),
    "errors_per_second": ("errors_per_second", "requests/s"),
    "preemptions_per_second": ("preemptions_per_second", "preemptions/s"),
    "replicas_desired": ("replicas_desired", "replicas"),
    "replicas_ready": ("replicas_ready", "replicas"),
}


def _error_rate(requests: float | None, errors: float | None) -> float | None:
    """Errors as a 0-1 share of finished requests; None when nothing finished (or unknown)."""
    if requests is None or errors is None or requests <= 0:
        return None
    return round(min(1.0, errors / requests), 6)


def downsample(rows: list[dict], column: str, start: int, end: int, step: int) -> tuple[list[int], list]:
    """Points at start, start+step, ... <= end. Each is the mean of the minutes ending in
    (point - step, point]; with a step under a minute, the latest minute at or before the point.
    None where no minute falls in the window."""
    values_at = {r["at"]: r[column] for r in rows}
    points, values = [], []
    at = start
    while at <= end:
        if step < 60:
            value = values_at.get(at // 60 * 60)
        else:
            first_minute = (at - step) // 60 + 1
            window = [values_at.get(m * 60) for m in range(first_minute, at // 60 + 1)]
            window = [v for v in window if v is not None]
            value = sum(window) / len(window) if window else None
        points.append(at)
        values.append(None if value is None else round(value, 6))
        at += step
    return points, values


def _counters_at(points: list[tuple[float, float, float]], at: float) -> tuple[float, float]:
    """(prompt, generation) counter values at `at`, linear between points, clamped at the ends."""
    if at <= points[0][0]:
        return points[0][1], points[0][2]
    for (t0, p0, g0), (t1, p1, g1) in zip(points, points[1:], strict=False):
        if at <= t1:
            share = (at - t0) / (t1 - t0) if t1 > t0 else 1.0
            return p0 + (p1 - p0) * share, g0 + (g1 - g0) * share
    return points[-1][1], points[-1][2]


class SimulatedMetricsBackend:
    """MetricsBackend over a simulated world. Read-only: it advances a copy and never saves."""

    def __init__(self, store: WorldStore, *, clock: Clock = _utc_now):
        self.store = store
        self.clock = clock

    def _world(self) -> World:
        world = self.store.load()
        world.advance_to(self.clock())
        return world

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[tuple[str, str], DeploymentMetrics]:
        world = self._world()
        result = {}
        for ref in refs:
            dep = world.deployments.get(f"{ref.namespace}/{ref.name}")
            if dep is None:
                result[(ref.namespace, ref.name)] = DeploymentMetrics(
                    as_of=world.now, unavailable_reason="no such deployment in the simulated cluster")
                continue
            rows = world.history.rows(dep.key, last=1)
            minute = rows[-1] if rows else {}
            last = dep.last
            # vLLM's gauges come from its pods: with none ready there is nothing to scrape.
            serving = dep.ready_replicas > 0
            result[(ref.namespace, ref.name)] = DeploymentMetrics(
                queue_depth=round(last.get("queue", 0.0), 3) if serving else None,
                running=round(last.get("running", 0.0), 3) if serving else None,
                ttft_p50_seconds=minute.get("ttft_p50_seconds"),
                ttft_p95_seconds=minute.get("ttft_p95_seconds"),
                ttft_p99_seconds=minute.get("ttft_p99_seconds"),
                itl_p95_seconds=minute.get("itl_p95_seconds"),
                e2e_p95_seconds=minute.get("e2e_p95_seconds"),
                kv_cache_usage=round(last.get("kv_cache_usage", 0.0), 4) if serving else None,
                gpu_utilization=round(last.get("gpu_utilization", 0.0), 4) if serving else None,
                prompt_tokens_per_second=minute.get("prompt_tokens_per_second"),
                generation_tokens_per_second=None if dep.is_embedding else minute.get("generation_tokens_per_second"),
                preemptions_per_second=minute.get("preemptions_per_second"),
                requests_per_second=minute.get("requests_per_second"),
                error_rate=_error_rate(minute.get("requests_per_second"), minute.get("errors_per_second")),
                as_of=world.now,
            )
        return result

    def deployment_series(self, ref: DeploymentRef, *, start: datetime, end: datetime,
                          step_seconds: int) -> dict[str, Series]:
        if step_seconds <= 0:
            raise BackendError("step_seconds must be positive", status=400)
        world = self._world()
        key = f"{ref.namespace}/{ref.name}"
        if key not in world.deployments:
            raise BackendError(f"deployment {key} not found in the simulated cluster", status=404)
        rows = world.history.rows(key)
        first, last = int(start.timestamp()), int(end.timestamp())
        series = {}
        for name, (column, unit) in SERIES_UNITS.items():
            points, values = downsample(rows, column, first, last, step_seconds)
            series[name] = Series(name, unit, tuple(from_epoch(p) for p in points), tuple(values))
        requests, errors = series["requests_per_second"], series["errors_per_second"]
        series["error_rate"] = Series(
            "error_rate", "fraction", requests.timestamps,
            tuple(_error_rate(r, e) for r, e in zip(requests.values, errors.values, strict=True)),
        )
        return series

    def gpu_utilization(self, node_names: Sequence[str]) -> list[GpuUtilization]:
        world = self._world()
        return [
            GpuUtilization(r.node, r.gpu_index, r.mig_profile, r.mig_instance_id, r.utilization,
                           r.memory_used_mib, r.power_watts, r.temperature_c)
            for r in world.gpu_readings(list(node_names))
        ]

    def token_increase(
        self, refs: Sequence[DeploymentRef], start: datetime, end: datetime
    ) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """Tokens counted in [start, end], from the cumulative counters of the per-minute history
        (interpolated linearly inside a minute, and up to the world's now from its live counters).
        Moments before the kept history count from its oldest value."""
        world = self._world()
        lo, hi = start.timestamp(), end.timestamp()
        result: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        for ref in refs:
            key = f"{ref.namespace}/{ref.name}"
            dep = world.deployments.get(key)
            if dep is None:
                result[(ref.namespace, ref.name)] = (None, None)
                continue
            points = []  # (epoch seconds, prompt total, generation total), in time order
            rows = world.history.rows(key)
            if rows:  # the counters as the oldest kept minute began
                first = rows[0]
                points.append((first["at"] - 60, first["prompt_tokens_total"] - first["prompt_tokens_per_second"] * 60,
                               first["generation_tokens_total"] - first["generation_tokens_per_second"] * 60))
            points += [(r["at"], r["prompt_tokens_total"], r["generation_tokens_total"]) for r in rows]
            now = world.now.timestamp()
            if not points or now > points[-1][0]:
                points.append((now, dep.prompt_tokens_total, dep.generation_tokens_total))
            at_start, at_end = _counters_at(points, lo), _counters_at(points, hi)
            result[(ref.namespace, ref.name)] = (
                max(0.0, at_end[0] - at_start[0]), max(0.0, at_end[1] - at_start[1])
            )
        return result

    def deployment_token_counters(self, namespace: str, name: str) -> tuple[int, int]:
        """(vllm:prompt_tokens_total, vllm:generation_tokens_total) summed over the deployment, now."""
        world = self._world()
        dep = world.deployments.get(f"{namespace}/{name}")
        if dep is None:
            raise BackendError(f"deployment {namespace}/{name} not found in the simulated cluster", status=404)
        return int(dep.prompt_tokens_total), int(dep.generation_tokens_total)

    def deployment_history(self, namespace: str, name: str) -> list[dict]:
        """Per-minute rows for the last 24 h, oldest first: "at" (aware datetime, the minute's
        end) and every history series, plus cumulative prompt/generation token counters and
        `gpus_allocated` / `cost_per_hour_usd` for costing."""
        world = self._world()
        if f"{namespace}/{name}" not in world.deployments:
            raise BackendError(f"deployment {namespace}/{name} not found in the simulated cluster", status=404)
        return [dict(row, at=from_epoch(row["at"])) for row in world.history.rows(f"{namespace}/{name}")]

    def node_pool_history(self) -> dict[str, list[dict]]:
        """Per pool, per minute: {"at", "nodes", "nodes_ready"}."""
        world = self._world()
        return {
            name: [dict(row, at=from_epoch(row["at"])) for row in world.history.pool_rows(name)]
            for name in world.pools
        }
