"""The simulated cluster backend: a `simulator.World` read as a cluster's facts, and written to.

Facts read the way a real cluster's labels and capacity would: a MIG node keeps gpu_count 8
and advertises `nvidia.com/gpu: 0` next to its `nvidia.com/mig-<profile>` counts; a node
still launching has Karpenter's labels but no GPU labels and no GPU capacity yet; a KEDA
ScaledObject comes with the `keda-hpa-<name>` HPA it owns, unless paused. Each call loads the
world and advances it to the clock's now, then saves what it advanced (and its writes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    UNCHANGED,
    AutoscalerFacts,
    BackendError,
    ClusterSnapshot,
    ConflictError,
    DeploymentFacts,
    GpuAssignment,
    KnownOwners,
    NodeFacts,
    NodePoolFacts,
    NotSupported,
    ObjectState,
    PodFacts,
    QuotaFacts,
    ScalingEventFacts,
    Taint,
)
from fleet.backends.simulated.events import world_events
from fleet.backends.simulated.store import Clock, WorldStore, utc_now
from fleet.mig_parted import MigPartedConfig
from simulator import KEEP, SimConflict, SimInvalid, SimNotFound, World
from simulator.autoscalers import KEDA
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

NOT_READY_TAINT = Taint("node.kubernetes.io/not-ready", "", "NoSchedule")
GPU_TAINT = Taint("nvidia.com/gpu", "true", "NoSchedule")
POLICY_NOT_SUPPORTED = (
    "autoscaler policies can be edited on Kubernetes clusters only: a simulated cluster models "
    "just the min and max replicas"
)


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
        dtype=str(manifest.get("dtype", "")),
        quantization=str(manifest.get("quantization", "")),
        tolerates_gpu_taint=manifest.get("tolerates_gpu_taint"),
        spreads_across_nodes=manifest.get("spreads_across_nodes"),
        has_pre_stop=manifest.get("has_pre_stop"),
    )


def _autoscaler_facts(world: World) -> list[AutoscalerFacts]:
    facts = []
    for a in world.autoscalers.values():
        facts.append(
            AutoscalerFacts(
                kind=ReplicaOwnerKind.SCALEDOBJECT if a.kind == KEDA else ReplicaOwnerKind.HPA,
                namespace=a.namespace,
                name=a.name,
                target_name=a.target,
                min_replicas=a.min_replicas,
                max_replicas=a.max_replicas,
                metric=a.summary(),
                paused_replicas=a.paused_replicas,
                resource_version=str(a.resource_version),
            )
        )
        if a.kind == KEDA and a.paused_replicas is None:
            # KEDA creates and owns an HPA for every active ScaledObject.
            facts.append(
                AutoscalerFacts(
                    kind=ReplicaOwnerKind.HPA,
                    namespace=a.namespace,
                    name=f"keda-hpa-{a.name}",
                    target_name=a.target,
                    min_replicas=max(1, a.min_replicas),
                    max_replicas=a.max_replicas,
                    metric=f"external s0-prometheus (from ScaledObject {a.name})",
                    resource_version=str(a.resource_version),
                    owned_by_scaledobject=a.name,
                )
            )
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

    def __init__(self, store: WorldStore, *, clock: Clock = utc_now):
        self.store = store
        self.clock = clock

    def _current(self) -> World:
        world = self.store.load()
        world.advance_to(self.clock())
        return world

    def snapshot(self) -> ClusterSnapshot:
        with self.store.atomic():
            world = self._current()
            self.store.save(world)
        return cluster_snapshot(world)

    def last_warnings(self) -> list[str]:
        """Always none: a world has no object the snapshot could fail to understand."""
        return []

    def scaling_events(self, known: KnownOwners | None = None) -> tuple[list[ScalingEventFacts], list[str]]:
        """The world's story only (fleet.events.watched_cluster_events_record); `known` is not
        needed: the world knows which deployment each pod and node belongs to."""
        with self.store.atomic():
            world = self._current()
            self.store.save(world)
        return world_events(world), []

    def gpu_assignments(self) -> list[GpuAssignment]:
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
        with self.store.atomic():
            world = self._current()
            try:
                version = apply(world)
            except (SimConflict, SimNotFound, SimInvalid) as error:
                raise _translate(error)
            self.store.save(world)
        return str(version)

    def set_autoscaler_bounds(
        self,
        namespace: str,
        name: str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        paused_replicas=KEEP,
        expected_resource_version: str | int | None = None,
    ) -> str:
        """Patch a ScaledObject/HPA's min/max (and KEDA paused-replicas; None clears it)."""
        expected = _rv(expected_resource_version)
        return self._write(
            lambda w: w.set_autoscaler(
                namespace,
                name,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                paused_replicas=paused_replicas,
                expected_resource_version=expected,
            )
        )

    def scale_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int,
        *,
        expected_resource_version: str | int | None = None,
        resource_version: str | None = None,
    ) -> str:
        """Write spec.replicas through /scale (an autoscaler, if any, overwrites it soon after).

        `resource_version` is the ClusterWriter spelling of `expected_resource_version`; with it
        the namespace allow-list is enforced as the protocol requires."""
        if resource_version is not None:
            self._check_writable(namespace)
        expected = _rv(resource_version if resource_version is not None else expected_resource_version)
        return self._write(lambda w: w.scale_deployment(namespace, name, replicas, expected_resource_version=expected))

    def set_quota(
        self, namespace: str, name: str, hard: dict[str, int], *, expected_resource_version: str | int | None = None
    ) -> str:
        expected = _rv(expected_resource_version)
        return self._write(lambda w: w.set_quota(namespace, name, hard, expected_resource_version=expected))

    def set_mig_config(self, node_name: str, layout: str, *, expected_resource_version: str | int | None = None) -> str:
        expected = _rv(expected_resource_version)
        return self._write(lambda w: w.set_mig_config(node_name, layout, expected_resource_version=expected))

    # ------------------------------------------------------------------ nodes (MIG repartitioning)
    # The calls of KubernetesClusterBackend, over the simulated world: the mig-manager there is the
    # world's own (relabelling starts a reconfiguration of MIG_RECONFIGURE_SECONDS).

    def get_node(self, name: str) -> dict:
        """{"unschedulable", "labels", "capacity", "resource_version"}, as the kubernetes backend reads them."""
        with self.store.atomic():
            world = self._current()
            self.store.save(world)
            try:
                node = world.node(name)
            except SimNotFound as error:
                raise _translate(error) from None
            facts = _node_facts(world, node)
        labels = {
            "nvidia.com/mig.config": node.mig_layout or "all-disabled",
            "nvidia.com/mig.config.state": "pending" if node.status == RECONFIGURING else "success",
        }
        return {
            "unschedulable": node.unschedulable,
            "labels": labels,
            "capacity": {k: str(v) for k, v in facts.capacity.items()},
            "resource_version": str(node.resource_version),
        }

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

    def mig_parted_config(self, config_map: str) -> MigPartedConfig | None:
        """The simulator has no GPU operator ConfigMap: its mig-manager applies any valid layout."""
        return None

    def node_pods(self, name: str) -> list[dict]:
        world = self.store.load()
        return [
            {"namespace": p.namespace, "name": p.name, "owner_kind": "ReplicaSet", "phase": "Running", "mirror": False}
            for p in sorted(world.pods.values(), key=lambda p: p.key)
            if p.node == name
        ]

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
        if not self.store.namespace_writable(namespace):
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
        if (autoscaler.kind == KEDA) != (kind == ReplicaOwnerKind.SCALEDOBJECT):
            raise SimNotFound(f"{kind} {namespace}/{name} not found")
        return autoscaler

    def _patch_autoscaler(
        self, kind: str, namespace: str, name: str, resource_version: str, min_replicas, max_replicas, paused_replicas
    ) -> str:
        self._check_writable(namespace)
        expected = _rv(resource_version)

        def apply(world: World) -> int:
            self._autoscaler(world, kind, namespace, name)
            return world.set_autoscaler(
                namespace,
                name,
                min_replicas=None if min_replicas is UNCHANGED else min_replicas,
                max_replicas=None if max_replicas is UNCHANGED else max_replicas,
                paused_replicas=KEEP if paused_replicas is UNCHANGED else paused_replicas,
                expected_resource_version=expected,
            )

        return self._write(apply)

    def patch_scaledobject(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
        paused_replicas=UNCHANGED,
    ) -> str:
        return self._patch_autoscaler(
            "scaledobject", namespace, name, resource_version, min_replicas, max_replicas, paused_replicas
        )

    def patch_hpa(
        self, namespace: str, name: str, *, resource_version: str, min_replicas=UNCHANGED, max_replicas=UNCHANGED
    ) -> str:
        return self._patch_autoscaler("hpa", namespace, name, resource_version, min_replicas, max_replicas, UNCHANGED)

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str:
        """Set the given entries of a quota's hard limits; the others are kept (as a merge patch does)."""
        self._check_writable(namespace)
        expected = _rv(resource_version)

        def merged(w) -> dict[str, int]:  # None removes an entry, as null does in a merge patch
            return {k: v for k, v in {**w.quota(namespace, name).hard, **hard}.items() if v is not None}

        return self._write(lambda w: w.set_quota(namespace, name, merged(w), expected_resource_version=expected))

    def read_autoscaler_spec(self, kind: str, namespace: str, name: str) -> ObjectState:
        """Not here: a simulated autoscaler is only its bounds (NotSupported, said to the user)."""
        raise NotSupported(POLICY_NOT_SUPPORTED)

    def patch_autoscaler_spec(
        self, kind: str, namespace: str, name: str, spec_patch: dict, *, resource_version: str
    ) -> str:
        """Not here, as `read_autoscaler_spec`."""
        raise NotSupported(POLICY_NOT_SUPPORTED)
