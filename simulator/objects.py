"""The simulated cluster's objects: node pools, nodes, deployments, pods, quotas.

Plain mutable dataclasses that serialize to JSON-compatible dicts. Every object carries an
integer `resource_version`, bumped by the world (from one cluster-wide revision counter, like
etcd's) whenever its spec or its status changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .capacity import ReplicaCapacity
from .mig import compute_fraction
from .traffic import Traffic

GPU_RESOURCE = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"

PENDING, PULLING, LOADING, READY = "pending", "pulling image", "loading model weights", "ready"
LAUNCHING, NODE_READY, RECONFIGURING = "launching", "ready", "reconfiguring MIG"


def mig_profile_of(resource: str) -> str | None:
    """ "nvidia.com/mig-3g.40gb" -> "3g.40gb"; a whole-GPU resource -> None."""
    return resource.removeprefix(MIG_PREFIX) if resource.startswith(MIG_PREFIX) else None


def copied(value):
    """A copy of nested lists and dicts, so a serialized dict never aliases live state."""
    if isinstance(value, list):
        return [copied(v) for v in value]
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    return value


def _plain(obj) -> dict:
    return {f.name: copied(getattr(obj, f.name)) for f in fields(obj)}


@dataclass
class NodePool:
    """A Karpenter-like pool: one instance type, adds nodes for pending pods, drops empty ones."""

    name: str
    instance_type: str
    gpu_product: str
    gpus_per_node: int
    gpu_memory_mib: int
    capacity_type: str  # "spot" | "on-demand"
    price_per_hour_usd: float
    min_nodes: int
    max_nodes: int
    provisioning_seconds: int  # launch to Ready (GPU nodes: 5-25 min)
    zones: list[str]
    region: str = "us-east-1"
    mig_layout: str | None = None  # layout of nodes the pool launches
    consolidate_after_seconds: int = 600
    on_demand_price_per_hour_usd: float | None = None  # for spot savings; None when on-demand
    resource_version: int = 0

    @property
    def price_per_gpu_hour_usd(self) -> float:
        return self.price_per_hour_usd / max(1, self.gpus_per_node)

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> NodePool:
        return cls(**copied(d))


@dataclass
class Node:
    name: str
    pool: str
    zone: str
    launched_at: int
    ready_at: int  # when it became (or becomes) Ready; also the end of a MIG reconfiguration
    mig_layout: str | None = None
    status: str = LAUNCHING
    empty_since: int | None = None
    images: list[str] = field(default_factory=list)  # cached on the node: pulls are quick
    resource_version: int = 0
    unschedulable: bool = False  # cordoned: no new pod lands here, and it is not consolidated

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> Node:
        return cls(**copied(d))


@dataclass
class Pod:
    namespace: str
    name: str
    deployment: str
    created_at: int
    node: str = ""
    scheduled_at: int | None = None
    pulled_at: int | None = None
    ready_at: int | None = None
    # (gpu index, MIG profile or None, GPU instance id or None) for every device it holds
    devices: list[list] = field(default_factory=list)
    status: str = PENDING
    resource_version: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def state_at(self, t: int) -> str:
        if not self.node or self.pulled_at is None or self.ready_at is None:
            return PENDING
        if t < self.pulled_at:
            return PULLING
        if t < self.ready_at:
            return LOADING
        return READY

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> Pod:
        return cls(**copied(d))


@dataclass
class Deployment:
    """A vLLM Deployment: its spec, its capacity model, its traffic, and its serving state."""

    namespace: str
    name: str
    model: str
    image: str
    gpu_resource: str  # "nvidia.com/gpu" | "nvidia.com/mig-<profile>"
    gpu_per_replica: int
    replicas: int  # spec.replicas
    capacity: ReplicaCapacity
    traffic: Traffic
    node_pool: str | None = None  # nodeSelector karpenter.sh/nodepool
    tensor_parallel: int = 1
    image_pull_seconds: int = 60
    weight_load_seconds: int = 120
    # Manifest details a lint reads: max_model_len, gpu_memory_utilization,
    # termination_grace_seconds, liveness/readiness_initial_delay_seconds, max_unavailable, max_surge,
    # dtype, quantization, has_pre_stop, tolerates_gpu_taint, spreads_across_nodes.
    manifest: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    created_at: int = 0
    resource_version: int = 0
    # status
    ready_replicas: int = 0
    failed_create: str = ""  # the ReplicaSet's FailedCreate message while pods are refused
    queue: float = 0.0
    prompt_tokens_total: float = 0.0
    generation_tokens_total: float = 0.0
    requests_total: float = 0.0
    preemptions_total: float = 0.0
    abandoned_total: float = 0.0
    last: dict = field(default_factory=dict)  # the last step's outcome (capacity.StepOutcome fields)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def mig_profile(self) -> str | None:
        return mig_profile_of(self.gpu_resource)

    @property
    def gpu_equivalents_per_replica(self) -> float:
        """GPUs' worth of compute one replica holds (a 3g.40gb slice is 3/7 of a GPU)."""
        return self.gpu_per_replica * compute_fraction(self.mig_profile)

    @property
    def is_embedding(self) -> bool:
        return self.capacity.mean_output_tokens <= 0

    def to_dict(self) -> dict:
        d = _plain(self)
        d["capacity"] = self.capacity.to_dict()
        d["traffic"] = self.traffic.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Deployment:
        d = copied(d)
        d["capacity"] = ReplicaCapacity.from_dict(d["capacity"])
        d["traffic"] = Traffic.from_dict(d["traffic"])
        return cls(**d)


@dataclass
class Quota:
    """A namespace ResourceQuota, GPU keys only: {"requests.nvidia.com/gpu": 40}."""

    namespace: str
    name: str
    hard: dict[str, int]
    used: dict[str, int] = field(default_factory=dict)
    resource_version: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> Quota:
        return cls(**copied(d))
