"""The simulated GPU cluster: its state, the writes it accepts, and its clock.

Time only moves when the caller asks (`advance_to`), in fixed steps; nothing here reads the
wall clock. All randomness of the cluster (node names, launch delays, load times) comes from
one `random.Random` whose state is saved with the world; traffic noise is counter-based (see
`traffic.py`). A world saved with `to_dict` and restored with `from_dict` therefore continues
exactly as the original would.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime

from . import cluster
from .autoscalers import Autoscaler, Reading
from .errors import SimConflict, SimInvalid, SimNotFound
from .history import History
from .mig import validate_layout
from .objects import NODE_READY, READY, RECONFIGURING, Deployment, Node, NodePool, Pod, Quota
from .readings import GpuReading, gpu_readings
from .serving import serve_traffic
from .traffic import Spike, Traffic

FORMAT_VERSION = 1
MAX_SIMULATED_GAP_SECONDS = 24 * 3600
RESUME_AFTER_JUMP_SECONDS = 3600  # after a long gap, simulate only the last hour before `t`
MIG_RECONFIGURE_SECONDS = 120
KEEP_EVENTS = 300


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()  # "leave this field as it is" for write methods where None means "clear"


def to_epoch(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("the simulator needs timezone-aware datetimes")
    return int(at.timestamp())


def from_epoch(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


class World:
    """A cluster, its deployments and their traffic at one simulated instant (`now`).

    Build one with `add_pool` / `add_quota` / `add_deployment` (or take `demo.demo_world`),
    move it with `advance_to`, change it with the write methods (absolute values, optionally
    checked against a resource_version), and keep it with `to_dict` / `from_dict`.
    """

    def __init__(self, *, seed: int, now: datetime, step_seconds: int = 15, region: str = "us-east-1"):
        if 60 % step_seconds:
            raise ValueError("step_seconds must divide a minute")
        self.seed = seed
        self.step_seconds = step_seconds
        self.region = region
        self.t = to_epoch(now) // 60 * 60
        self.revision = 0
        self.rng = random.Random(seed)
        self.pools: dict[str, NodePool] = {}
        self.nodes: dict[str, Node] = {}
        self.deployments: dict[str, Deployment] = {}
        self.autoscalers: dict[str, Autoscaler] = {}
        self.pods: dict[str, Pod] = {}
        self.quotas: dict[str, Quota] = {}
        self.history = History()
        self.events: list[list] = []  # [t, reason, object, message], oldest first
        self.held: dict[str, dict[cluster.Device, str]] = {}  # node -> device -> pod key

    @property
    def now(self) -> datetime:
        return from_epoch(self.t)

    # ------------------------------------------------------------------ bookkeeping

    def bump(self, obj) -> int:
        self.revision += 1
        obj.resource_version = self.revision
        return self.revision

    def event(self, t: int, reason: str, obj: str, message: str) -> None:
        self.events.append([t, reason, obj, message])
        del self.events[:-KEEP_EVENTS]

    def replica_set_name(self, dep: Deployment) -> str:
        digest = hashlib.blake2b(f"{dep.key}|{dep.image}|{dep.model}".encode(), digest_size=10).digest()
        return f"{dep.name}-" + "".join(cluster.NAME_ALPHABET[b % 27] for b in digest)

    def new_node_name(self) -> str:
        while True:
            name = f"ip-10-0-{self.rng.randrange(16, 240)}-{self.rng.randrange(2, 254)}.ec2.internal"
            if name not in self.nodes:
                return name

    def bind(self, pod: Pod, node: Node, devices: list, *, scheduled_at: int, pulled_at: int, ready_at: int) -> None:
        pod.node, pod.scheduled_at, pod.pulled_at, pod.ready_at = node.name, scheduled_at, pulled_at, ready_at
        pod.devices = [list(d) for d in devices]
        held = self.held.setdefault(node.name, {})
        for d in devices:
            held[tuple(d)] = pod.key
        pod.status = pod.state_at(self.t)
        self.bump(pod)

    def delete_pod(self, pod: Pod) -> None:
        held = self.held.get(pod.node, {})
        for d in pod.devices:
            held.pop(tuple(d), None)
        del self.pods[pod.key]

    # ------------------------------------------------------------------ building

    def add_pool(
        self, pool: NodePool, *, nodes: int | None = None, mig_layouts: Sequence[str | None] = ()
    ) -> list[Node]:
        """Add a pool with `nodes` (default: its min) Ready nodes; `mig_layouts[i]` for node i."""
        if pool.mig_layout:
            validate_layout(pool.gpu_product, pool.mig_layout)
        self.bump(pool)
        self.pools[pool.name] = pool
        created = []
        for i in range(pool.min_nodes if nodes is None else nodes):
            node = cluster.launch_node(self, pool, self.t, ready=True)
            layout = mig_layouts[i] if i < len(mig_layouts) else pool.mig_layout
            validate_layout(pool.gpu_product, layout)
            node.mig_layout = layout
            created.append(node)
        return created

    def add_deployment(self, dep: Deployment, *, autoscaler: Autoscaler | None = None, warm: bool = True) -> None:
        """Add a deployment; with `warm`, its pods are already scheduled and serving if they fit."""
        if dep.key in self.deployments:
            raise SimInvalid(f"deployment {dep.key} already exists")
        dep.created_at = dep.created_at or self.t - 7 * 86400
        self.bump(dep)
        self.deployments[dep.key] = dep
        self.history.counter_last[dep.key] = [int(dep.prompt_tokens_total), int(dep.generation_tokens_total)]
        if autoscaler is not None:
            if autoscaler.namespace != dep.namespace or autoscaler.target != dep.name:
                raise SimInvalid("the autoscaler must target the deployment, in its namespace")
            dep.replicas = max(autoscaler.min_replicas, min(autoscaler.max_replicas, dep.replicas))
            autoscaler.desired_replicas = dep.replicas
            self.bump(autoscaler)
            self.autoscalers[f"{autoscaler.namespace}/{autoscaler.name}"] = autoscaler
        if warm:
            cluster.reconcile_replicas(self, self.t)
            cluster.schedule_pending(self, self.t)
            for pod in cluster.pods_by_deployment(self)[dep.key]:
                if pod.node:
                    pod.created_at = pod.scheduled_at = pod.pulled_at = pod.ready_at = dep.created_at
                    pod.status = READY
            cluster.progress_pods(self, self.t)
        self._update_quota_usage()

    def add_quota(self, namespace: str, name: str, hard: dict[str, int]) -> Quota:
        quota = Quota(namespace, name, dict(hard))
        self.bump(quota)
        self.quotas[quota.key] = quota
        self._update_quota_usage()
        return quota

    # ------------------------------------------------------------------ lookups

    def deployment(self, namespace: str, name: str) -> Deployment:
        try:
            return self.deployments[f"{namespace}/{name}"]
        except KeyError:
            raise SimNotFound(f"deployment {namespace}/{name} not found")

    def autoscaler(self, namespace: str, name: str) -> Autoscaler:
        try:
            return self.autoscalers[f"{namespace}/{name}"]
        except KeyError:
            raise SimNotFound(f"autoscaler {namespace}/{name} not found")

    def autoscaler_for(self, dep: Deployment) -> Autoscaler | None:
        for autoscaler in self.autoscalers.values():
            if autoscaler.namespace == dep.namespace and autoscaler.target == dep.name:
                return autoscaler
        return None

    def quota(self, namespace: str, name: str) -> Quota:
        try:
            return self.quotas[f"{namespace}/{name}"]
        except KeyError:
            raise SimNotFound(f"resourcequota {namespace}/{name} not found")

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise SimNotFound(f"node {name} not found")

    def pods_of(self, namespace: str, name: str) -> list[Pod]:
        return sorted(
            (p for p in self.pods.values() if p.namespace == namespace and p.deployment == name),
            key=lambda p: (p.created_at, p.name),
        )

    # ------------------------------------------------------------------ writes

    @staticmethod
    def _check_version(obj, expected: int | None) -> None:
        if expected is not None and int(expected) != obj.resource_version:
            raise SimConflict(
                f"the object has been modified (resource_version {obj.resource_version}, expected {expected});"
                " read it again and retry"
            )

    def set_autoscaler(
        self,
        namespace: str,
        name: str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        paused_replicas: int | None | _Keep = KEEP,
        expected_resource_version: int | None = None,
    ) -> int:
        """Patch an autoscaler's bounds (absolute values). `paused_replicas=None` clears the pin."""
        autoscaler = self.autoscaler(namespace, name)
        self._check_version(autoscaler, expected_resource_version)
        new_min = autoscaler.min_replicas if min_replicas is None else min_replicas
        new_max = autoscaler.max_replicas if max_replicas is None else max_replicas
        floor = 0 if autoscaler.kind == "keda" else 1
        if new_min < floor or new_max < max(new_min, 1):
            raise SimInvalid(f"invalid bounds min={new_min} max={new_max} for a {autoscaler.kind} autoscaler")
        if not isinstance(paused_replicas, _Keep):
            if autoscaler.kind != "keda" and paused_replicas is not None:
                raise SimInvalid("paused_replicas is a KEDA ScaledObject annotation; an HPA has none")
            if paused_replicas is not None and paused_replicas < 0:
                raise SimInvalid("paused_replicas must be >= 0")
            autoscaler.paused_replicas = paused_replicas
        autoscaler.min_replicas, autoscaler.max_replicas = new_min, new_max
        return self.bump(autoscaler)

    def clear_paused_replicas(self, namespace: str, name: str, *, expected_resource_version: int | None = None) -> int:
        return self.set_autoscaler(
            namespace, name, paused_replicas=None, expected_resource_version=expected_resource_version
        )

    def scale_deployment(
        self, namespace: str, name: str, replicas: int, *, expected_resource_version: int | None = None
    ) -> int:
        """Write spec.replicas. An autoscaled deployment gets it overwritten at the next evaluation."""
        dep = self.deployment(namespace, name)
        self._check_version(dep, expected_resource_version)
        if replicas < 0:
            raise SimInvalid("replicas must be >= 0")
        dep.replicas = replicas
        return self.bump(dep)

    def set_quota(
        self, namespace: str, name: str, hard: dict[str, int], *, expected_resource_version: int | None = None
    ) -> int:
        """Replace a ResourceQuota's hard limits. Existing pods stay; only new ones are refused."""
        quota = self.quota(namespace, name)
        self._check_version(quota, expected_resource_version)
        if any(not isinstance(v, int) or v < 0 for v in hard.values()):
            raise SimInvalid("quota limits must be non-negative integers")
        quota.hard = dict(hard)
        self._update_quota_usage()
        return self.bump(quota)

    def set_mig_config(self, node_name: str, layout: str, *, expected_resource_version: int | None = None) -> int:
        """Relabel nvidia.com/mig.config: GPU pods on the node are evicted, the node repartitions."""
        node = self.node(node_name)
        self._check_version(node, expected_resource_version)
        validate_layout(self.pools[node.pool].gpu_product, layout)
        if layout == (node.mig_layout or "all-disabled"):
            return node.resource_version
        for pod in [p for p in self.pods.values() if p.node == node.name]:
            self.delete_pod(pod)
            self.event(self.t, "Evicted", f"Pod/{pod.key}", f"MIG reconfiguration of {node.name}")
        node.mig_layout = None if layout == "all-disabled" else layout
        node.status, node.ready_at = RECONFIGURING, self.t + MIG_RECONFIGURE_SECONDS
        self.event(self.t, "MigReconfigure", f"Node/{node.name}", f"nvidia.com/mig.config={layout}")
        return self.bump(node)

    def set_unschedulable(self, node_name: str, unschedulable: bool) -> int:
        """Cordon (True) or uncordon a node, as `kubectl cordon` does."""
        node = self.node(node_name)
        if node.unschedulable == unschedulable:
            return node.resource_version
        node.unschedulable = unschedulable
        self.event(
            self.t,
            "NodeNotSchedulable" if unschedulable else "NodeSchedulable",
            f"Node/{node.name}",
            "cordoned" if unschedulable else "uncordoned",
        )
        return self.bump(node)

    def evict_pod(self, namespace: str, name: str) -> None:
        """The eviction API: the pod goes (its Deployment makes a new one, which schedules elsewhere)."""
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise SimNotFound(f"pod {namespace}/{name} not found")
        self.delete_pod(pod)
        self.event(self.t, "Evicted", f"Pod/{pod.key}", "evicted through the eviction API")

    def set_traffic(self, namespace: str, name: str, traffic: Traffic) -> None:
        self.deployment(namespace, name).traffic = traffic

    def add_spike(self, namespace: str, name: str, spike: Spike) -> None:
        dep = self.deployment(namespace, name)
        dep.traffic = dep.traffic.with_spike(spike)

    # ------------------------------------------------------------------ time

    def advance_to(self, at: datetime) -> None:
        """Step to `at`. Over a gap longer than a day, jump and simulate only the last hour."""
        target = to_epoch(at)
        # The world's clock sits on a whole minute; allow that minute of alignment, or a world
        # built exactly `MAX` before a `now` with seconds would jump over its own warm-up.
        if target - self.t > MAX_SIMULATED_GAP_SECONDS + 60:
            self._jump_to((target - RESUME_AFTER_JUMP_SECONDS) // 60 * 60)
        while self.t + self.step_seconds <= target:
            self.step()

    def _jump_to(self, t: int) -> None:
        self.event(t, "TimeJump", "World", f"skipped {(t - self.t) / 3600:.1f} h without simulating it")
        self.history.clear()
        for autoscaler in self.autoscalers.values():
            autoscaler.recommendations = []
        self.t = t

    def step(self) -> None:
        t = self.t + self.step_seconds
        cluster.progress_nodes(self, t)
        self._run_autoscalers(t)
        cluster.reconcile_replicas(self, t)
        unschedulable = cluster.schedule_pending(self, t)
        cluster.provision_nodes(self, t, unschedulable)
        cluster.progress_pods(self, t)
        self._update_quota_usage()
        serve_traffic(self, t)
        self.t = t
        if t % 60 == 0:
            self._close_minute(t)

    def _run_autoscalers(self, t: int) -> None:
        for autoscaler in self.autoscalers.values():
            dep = self.deployments.get(f"{autoscaler.namespace}/{autoscaler.target}")
            if dep is None or not autoscaler.due(t):
                continue
            ready = dep.ready_replicas
            last = dep.last
            reading = Reading(
                current=dep.replicas,
                ready=ready,
                queue_depth=last.get("queue", 0.0),
                gpu_utilization=last.get("gpu_utilization") if ready else None,
                cpu_utilization=last.get("cpu_utilization") if ready else None,
            )
            desired = autoscaler.evaluate(t, reading)
            if desired != autoscaler.desired_replicas:
                autoscaler.desired_replicas = desired
                self.bump(autoscaler)
            if desired != dep.replicas:
                verb = "ScaledUp" if desired > dep.replicas else "ScaledDown"
                self.event(
                    t,
                    verb,
                    f"Deployment/{dep.key}",
                    f"{autoscaler.kind} {autoscaler.name}: {dep.replicas} -> {desired} "
                    f"({autoscaler.summary()}; queue {reading.queue_depth:.0f}, ready {ready})",
                )
                autoscaler.last_scale = t
                dep.replicas = desired
                self.bump(dep)

    def _update_quota_usage(self) -> None:
        usage = cluster.namespace_usage(self)
        for quota in self.quotas.values():
            used = {key: usage.get(quota.namespace, {}).get(key, 0) for key in quota.hard}
            if used != quota.used:
                quota.used = used
                self.bump(quota)

    def _close_minute(self, t: int) -> None:
        pool_nodes = {}
        for name in self.pools:
            nodes = [n for n in self.nodes.values() if n.pool == name]
            pool_nodes[name] = (len(nodes), sum(1 for n in nodes if n.status == NODE_READY))
        counters = {key: (d.prompt_tokens_total, d.generation_tokens_total) for key, d in self.deployments.items()}
        self.history.close_minute(t // 60, counters, pool_nodes)

    # ------------------------------------------------------------------ readings

    def gpu_readings(self, node_names: list[str] | None = None) -> list[GpuReading]:
        """Every GPU and MIG slice of Ready nodes, with its holder and current utilization."""
        return gpu_readings(self, node_names)

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict:
        """A JSON-compatible copy of the whole state, RNG included."""
        version, internal, gauss_next = self.rng.getstate()
        return {
            "format": FORMAT_VERSION,
            "seed": self.seed,
            "step_seconds": self.step_seconds,
            "region": self.region,
            "t": self.t,
            "revision": self.revision,
            "rng": [version, list(internal), gauss_next],
            "pools": [p.to_dict() for p in self.pools.values()],
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "deployments": [d.to_dict() for d in self.deployments.values()],
            "autoscalers": [a.to_dict() for a in self.autoscalers.values()],
            "pods": [p.to_dict() for p in self.pods.values()],
            "quotas": [q.to_dict() for q in self.quotas.values()],
            "history": self.history.to_dict(),
            "events": [list(e) for e in self.events],
        }

    @classmethod
    def from_dict(cls, d: dict) -> World:
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported simulator state format {d.get('format')!r}")
        world = cls(seed=d["seed"], now=from_epoch(d["t"]), step_seconds=d["step_seconds"], region=d["region"])
        world.t = d["t"]
        world.revision = d["revision"]
        version, internal, gauss_next = d["rng"]
        world.rng.setstate((version, tuple(internal), gauss_next))
        world.pools = {p["name"]: NodePool.from_dict(p) for p in d["pools"]}
        world.nodes = {n["name"]: Node.from_dict(n) for n in d["nodes"]}
        world.deployments = {f"{x['namespace']}/{x['name']}": Deployment.from_dict(x) for x in d["deployments"]}
        world.autoscalers = {f"{a['namespace']}/{a['name']}": Autoscaler.from_dict(a) for a in d["autoscalers"]}
        world.pods = {f"{p['namespace']}/{p['name']}": Pod.from_dict(p) for p in d["pods"]}
        world.quotas = {f"{q['namespace']}/{q['name']}": Quota.from_dict(q) for q in d["quotas"]}
        world.history = History.from_dict(d["history"])
        world.events = [list(e) for e in d["events"]]
        for pod in world.pods.values():
            for device in pod.devices:
                world.held.setdefault(pod.node, {})[tuple(device)] = pod.key
        return world
