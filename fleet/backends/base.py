"""The two backend protocols and the plain dataclasses they speak.

Everything above the backends (sync, selectors, services, pages, API) talks to a
cluster and to its metrics only through these types. A backend never returns a
client library object: the Kubernetes backend and the simulated one both turn
what they see into the frozen dataclasses below, so one contract test suite can
run against both.

Units are in the names where they are not obvious: `_seconds`, `_mib`, `_usd`.
Resource names are Kubernetes resource names (`nvidia.com/gpu`,
`nvidia.com/mig-3g.40gb`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from fleet.backends.signals import AlertSignals
from fleet.mig_parted import MigPartedConfig

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"


class BackendError(Exception):
    """A backend could not do what was asked. The message is one line, safe to show a user.

    It never carries credentials or a traceback. `transient` says whether a retry may help
    (timeouts, 5xx, connection refused) as opposed to a refusal (401/403, bad config).
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status


class ConflictError(BackendError):
    """The object changed since the resourceVersion the write was computed from (HTTP 409)."""

    def __init__(self, message: str):
        super().__init__(message, transient=True, status=409)


class NotSupported(BackendError):
    """This backend cannot do this at all, so a retry cannot help: a simulated cluster has no whole
    autoscaler spec to edit and no Prometheus history. The message says why, in the user's words;
    callers answer 409 with it."""

    def __init__(self, message: str):
        super().__init__(message, transient=False, status=409)


class EvictionRefused(BackendError):
    """An eviction the API server refused (HTTP 429): a PodDisruptionBudget allows no more disruption.
    `budget` names it when the answer did."""

    def __init__(self, message: str, *, budget: str = ""):
        super().__init__(message, transient=False, status=429)
        self.budget = budget


# --------------------------------------------------------------------------- cluster facts


def one_line(text: object, limit: int = 160) -> str:
    """`text` as one printable line, safe to put in a message: line breaks, control characters and
    runs of spaces become one space; cut to `limit` characters with "…"."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeFacts:
    """One Kubernetes node as ScaleDeck needs it (labels and capacity already interpreted)."""

    name: str
    instance_type: str  # node.kubernetes.io/instance-type ("" when unlabelled)
    zone: str  # topology.kubernetes.io/zone
    region: str  # topology.kubernetes.io/region
    node_pool: str  # karpenter.sh/nodepool, or a cloud node-group label ("" when none)
    capacity_type: str  # "spot" | "on-demand"
    gpu_product: str  # nvidia.com/gpu.product, e.g. "NVIDIA-A100-SXM4-80GB" ("" when no GPU)
    gpu_count: int  # physical GPUs (nvidia.com/gpu.count), also on a MIG node
    gpu_memory_mib: int  # per GPU (nvidia.com/gpu.memory)
    mig_config: str | None  # nvidia.com/mig.config, e.g. "all-1g.10gb"; None when MIG is off
    mig_strategy: str | None  # nvidia.com/mig.strategy: "single" | "mixed" | None
    capacity: dict[str, int]  # GPU/MIG extended resources only: {"nvidia.com/gpu": 8, ...}
    allocatable: dict[str, int]
    ready: bool
    unschedulable: bool  # cordoned
    taints: tuple[Taint, ...] = ()
    created_at: datetime | None = None

    @property
    def mig_devices(self) -> dict[str, int]:
        """MIG profile -> count from capacity, e.g. {"1g.10gb": 56}."""
        return {
            key.removeprefix(MIG_RESOURCE_PREFIX): count
            for key, count in self.capacity.items()
            if key.startswith(MIG_RESOURCE_PREFIX) and count > 0
        }


@dataclass(frozen=True)
class PodFacts:
    namespace: str
    name: str
    node_name: str  # "" while unscheduled
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ready: bool
    started_at: datetime | None
    gpu_requests: dict[str, int]  # {"nvidia.com/gpu": 4} or {"nvidia.com/mig-1g.10gb": 1}
    restarts: int
    owner_kind: str  # "Deployment" (resolved through its ReplicaSet), "Job", "StatefulSet", "" for bare
    owner_name: str  # the Deployment's name when owner_kind == "Deployment"
    # Why the pod is not ready yet, in the operator's words: "waiting for a node",
    # "pulling image", "loading model weights", "" when ready or unknown.
    waiting_reason: str = ""


@dataclass(frozen=True)
class AutoscalerFacts:
    """An HPA or a KEDA ScaledObject that targets a Deployment."""

    kind: str  # a fleet.autoscalers.ReplicaOwnerKind: "scaledobject" | "hpa"
    namespace: str  # its own, which is its target Deployment's
    name: str
    target_name: str  # the Deployment it scales
    min_replicas: int
    max_replicas: int
    metric: str  # human summary, e.g. "vllm:num_requests_waiting > 5 per replica"
    paused_replicas: int | None = None  # KEDA autoscaling.keda.sh/paused-replicas
    paused: bool = False  # KEDA autoscaling.keda.sh/paused
    resource_version: str = ""
    # For an HPA: the ScaledObject that owns it (KEDA's own keda-hpa-<name>), else "".
    owned_by_scaledobject: str = ""


@dataclass(frozen=True)
class DeploymentFacts:
    namespace: str
    name: str
    model: str  # --model / `vllm serve MODEL`; "" when not a vLLM deployment
    image: str
    replicas_desired: int  # spec.replicas
    replicas_ready: int
    replicas_updated: int
    replicas_available: int
    gpu_resource: str  # "nvidia.com/gpu" | "nvidia.com/mig-<profile>" | "" (no GPU)
    gpu_per_replica: int
    tensor_parallel: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    rollout_condition: str = ""  # e.g. "Progressing: NewReplicaSetAvailable"
    termination_grace_seconds: int | None = None
    liveness_initial_delay_seconds: int | None = None
    readiness_initial_delay_seconds: int | None = None
    max_unavailable: str = ""  # rollout strategy, as written ("1", "25%")
    max_surge: str = ""
    resource_version: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    dtype: str = ""  # vLLM --dtype ("" = auto)
    quantization: str = ""  # vLLM --quantization ("" = none given)
    # From the pod template; None = not known (a backend that does not read it).
    tolerates_gpu_taint: bool | None = None
    spreads_across_nodes: bool | None = None  # required anti-affinity / spread on the hostname
    has_pre_stop: bool | None = None  # the serving container's preStop hook


@dataclass(frozen=True)
class QuotaFacts:
    namespace: str
    name: str
    hard: dict[str, int]  # only GPU/MIG keys: {"requests.nvidia.com/gpu": 16}
    used: dict[str, int]
    resource_version: str = ""


@dataclass(frozen=True)
class NodePoolFacts:
    """A Karpenter NodePool (or the simulator's pool)."""

    name: str
    instance_types: tuple[str, ...]
    capacity_types: tuple[str, ...]
    gpu_limit: int | None  # spec.limits["nvidia.com/gpu"]
    consolidation_policy: str = ""  # WhenEmpty | WhenEmptyOrUnderutilized


@dataclass(frozen=True)
class ScalingEventFacts:
    """One moment of a scaling story: a Kubernetes Event, a pod condition's transition, or a
    Karpenter NodeClaim condition, already given its timeline `kind` (`fleet.models.EventKind`).

    `uid` + `count` identify it: an Event's uid and its count (a repeated Event is a new
    occurrence), or a synthetic uid for conditions ("pod:<uid>:Ready:<time>"), so a sync that
    sees the same thing twice stores it once. `deployment` is the Deployment it belongs to
    when known ("" for node-level facts, which join a deployment through `node_name`).
    """

    uid: str
    count: int
    at: datetime
    kind: str  # metric_above_target | desired_changed | pod_created | ... | other
    reason: str  # the Kubernetes reason or condition type, e.g. "FailedScheduling", "Ready"
    namespace: str  # "" for cluster-scoped objects (nodes, NodeClaims)
    object_kind: str  # Pod | Deployment | ReplicaSet | HorizontalPodAutoscaler | ScaledObject | NodeClaim | Node
    object_name: str
    message: str
    source: str  # "event" | "pod" | "nodeclaim" | "simulator"
    deployment: str = ""
    node_name: str = ""
    node_pool: str = ""


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything one full list-based sync sees, at one moment."""

    taken_at: datetime
    nodes: tuple[NodeFacts, ...]
    pods: tuple[PodFacts, ...]
    deployments: tuple[DeploymentFacts, ...]
    autoscalers: tuple[AutoscalerFacts, ...]
    quotas: tuple[QuotaFacts, ...]
    node_pools: tuple[NodePoolFacts, ...] = ()
    keda_installed: bool = True
    # Events, pod condition transitions and NodeClaim conditions (the timeline's raw material).
    events: tuple[ScalingEventFacts, ...] = ()


@dataclass(frozen=True)
class KnownOwners:
    """What is already known about a cluster's model Deployments, without a snapshot: a watched
    cluster's events are read between full syncs from the stored rows (fleet/events.py)."""

    deployments: frozenset  # {(namespace, name)}
    pods: dict  # (namespace, pod name) -> Deployment name
    autoscalers: dict  # ("ScaledObject" | "HorizontalPodAutoscaler", namespace, name) -> target name


# (node, GPU index, MIG profile or None, MIG instance id or None, pod namespace, pod name)
GpuAssignment = tuple[str, int, str | None, int | None, str, str]


class ClusterReader(Protocol):
    """What a full sync reads (`fleet.sync.cluster_sync`): a backend, or a watcher's caches."""

    def snapshot(self) -> ClusterSnapshot:
        """List everything the sync needs. Raises BackendError with a one-line reason."""

    def last_warnings(self) -> list[str]:
        """What the last snapshot skipped or could not read, one line each; [] when nothing was."""

    def gpu_assignments(self) -> list[GpuAssignment] | None:
        """Which pod holds which GPU or MIG slice, as of the last snapshot. None when the cluster
        does not say (Kubernetes: only the kubelet knows), and the sync then infers the holding by
        packing each node's pods onto its free devices. Raises BackendError."""


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class DeploymentRef:
    """What a metrics backend needs to find a deployment's series.

    `pods` are its live pods, for current values. Chart series (`deployment_series`) select
    every pod the deployment ran over the range by its namespace and name, not `pods`.
    """

    namespace: str
    name: str
    pods: tuple[str, ...]


@dataclass(frozen=True)
class DeploymentMetrics:
    """Current values for one deployment. None means unknown, never zero-by-default."""

    queue_depth: float | None = None  # requests waiting, summed over pods
    running: float | None = None  # requests running, summed over pods
    ttft_p50_seconds: float | None = None
    ttft_p95_seconds: float | None = None
    ttft_p99_seconds: float | None = None
    itl_p95_seconds: float | None = None  # inter-token latency
    e2e_p95_seconds: float | None = None
    e2e_p99_seconds: float | None = None  # the longest generations (the doctor's grace check)
    kv_cache_usage: float | None = None  # 0-1 fraction, mean over pods
    gpu_utilization: float | None = None  # 0-1 fraction, mean over the deployment's GPUs/slices
    prompt_tokens_per_second: float | None = None
    generation_tokens_per_second: float | None = None
    preemptions_per_second: float | None = None
    requests_per_second: float | None = None  # finished requests, whatever their finish reason
    error_rate: float | None = None  # 0-1 share of finished requests that did not stop or hit their length
    as_of: datetime | None = None
    unavailable_reason: str | None = None  # None when all is well


@dataclass(frozen=True)
class Series:
    """One named time series: parallel lists of timestamps and values (None = gap)."""

    name: str
    unit: str
    timestamps: tuple[datetime, ...]
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class GpuUtilization:
    node_name: str
    gpu_index: int
    mig_profile: str | None  # None for a whole GPU
    mig_instance_id: int | None
    utilization: float | None  # 0-1
    memory_used_mib: float | None = None
    power_watts: float | None = None
    temperature_c: float | None = None
    # The pod holding the device, when the metrics source says so (DCGM exporter's pod mapping).
    namespace: str | None = None
    pod: str | None = None


@runtime_checkable
class MetricsBackend(Protocol):
    # Why the last `deployment_metrics` answer is all unknowns when the source failed (that method
    # never raises), so a caller can tell a source that is down from pods without series; None
    # after a good answer, and always None for a source that cannot fail that way.
    last_error: BackendError | None

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[tuple[str, str], DeploymentMetrics]:
        """Current metrics for many deployments in a bounded number of queries.

        Keyed by (namespace, name). Never raises for an unavailable source: every value is
        then None and `unavailable_reason` says why.
        """

    def deployment_series(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int
    ) -> dict[str, Series]:
        """Range series for charts, keyed by name: ttft_p50/ttft_p95/ttft_p99, itl_p50/itl_p95,
        e2e_p50/e2e_p95 (s), queue_depth, running, kv_cache_usage (0-1), gpu_utilization (0-1),
        generation_tokens_per_second, prompt_tokens_per_second, requests_per_second,
        errors_per_second, error_rate (0-1), preemptions_per_second, replicas_desired and
        replicas_ready (all gaps where the source does not know them). Every pod the deployment
        ran in the range counts, not only today's. Raises BackendError when unavailable."""

    def gpu_utilization(self, node_names: Sequence[str]) -> list[GpuUtilization]:
        """Per-GPU and per-MIG-slice utilization for the given nodes. Raises BackendError."""

    def token_increase(
        self, refs: Sequence[DeploymentRef], start: datetime, end: datetime
    ) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """(prompt tokens, generated tokens) counted in [start, end] by each deployment's pods,
        from the vLLM counters (`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`).

        Keyed by (namespace, name), every ref present; None where none of its pods report.
        What cost accrual bills tokens from: exact counts, not a rate times the interval.
        Raises BackendError when the source is unavailable."""

    def alert_signals(self, objectives: Mapping[tuple[str, str], float], at: datetime) -> AlertSignals:
        """What alert evaluation judges at `at`, for the deployments of `objectives` ((namespace,
        name) -> TTFT objective in seconds) and every GPU node. Raises BackendError."""

    def deployment_history(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int = 60
    ) -> dict[int, dict[str, float | None]]:
        """A what-if's inputs per step (epoch seconds): `arrivals_per_second`, `requests_per_second`,
        `prompt_tokens_per_second`, `generation_tokens_per_second`, `queue_depth`,
        `ttft_p95_seconds` and `replicas`, only steps where some pod reported. Raises
        NotSupported where the source keeps no such history, BackendError when unavailable."""

    def close(self) -> None:
        """Let go of connections; the backend is not used afterwards."""


# --------------------------------------------------------------------------- writes


class _Unchanged:
    """Sentinel: leave this field as it is (distinct from None, which removes it)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


@dataclass(frozen=True)
class ObjectState:
    """What a write needs to know first: the current values and the resourceVersion they came from.

    `values` keys: for a Deployment scale {"replicas"}; for a ScaledObject {"min_replicas",
    "max_replicas", "paused_replicas"}; for an HPA {"min_replicas", "max_replicas"}; for a
    ResourceQuota {"hard": {...}}.
    """

    kind: str  # "deployment" | "scaledobject" | "hpa" | "quota"
    namespace: str
    name: str
    values: dict
    resource_version: str


@runtime_checkable
class ClusterWriter(Protocol):
    """The write half. Every write is absolute, carries the resourceVersion it was computed from
    (a mismatch raises ConflictError), returns the new resourceVersion, and is refused with a
    BackendError before any request for a namespace outside the cluster's allow-list.
    Autoscaled Deployments are never scaled through `scale_deployment` (the caller's rule)."""

    def read_object(self, kind: str, namespace: str, name: str) -> ObjectState: ...

    def scale_deployment(self, namespace: str, name: str, replicas: int, *, resource_version: str) -> str: ...

    def patch_scaledobject(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas: int | _Unchanged = UNCHANGED,
        max_replicas: int | _Unchanged = UNCHANGED,
        paused_replicas: int | None | _Unchanged = UNCHANGED,
    ) -> str: ...

    def patch_hpa(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas: int | _Unchanged = UNCHANGED,
        max_replicas: int | _Unchanged = UNCHANGED,
    ) -> str: ...

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str: ...

    def read_autoscaler_spec(self, kind: str, namespace: str, name: str) -> ObjectState:
        """A ScaledObject's ("scaledobject") or HPA's ("hpa") whole spec with its labels and
        annotations, for a policy edit: values {"spec", "labels", "annotations"}. Raises
        NotSupported where the cluster models only the bounds (a simulated one)."""

    def patch_autoscaler_spec(
        self, kind: str, namespace: str, name: str, spec_patch: dict, *, resource_version: str
    ) -> str:
        """Merge `spec_patch` into the autoscaler's spec (a policy edit). Returns the new
        resourceVersion. Raises NotSupported where `read_autoscaler_spec` does."""


class NodeOperator(Protocol):
    """What MIG repartitioning does to a node (mig/apply.py), and the layouts it may ask for (mig/layouts.py)."""

    def get_node(self, name: str) -> dict:
        """{"unschedulable", "labels", "capacity", "resource_version"} of a node, read now."""

    def patch_node(self, name: str, body: dict) -> str:
        """Merge-patch a node (cordon, uncordon, a label). Returns the new resourceVersion."""

    def node_pods(self, name: str) -> list[dict]:
        """The pods bound to a node: {"namespace", "name", "owner_kind", "phase", "mirror"}."""

    def evict_pod(self, namespace: str, name: str) -> None:
        """Evict a pod, honouring its PodDisruptionBudgets (refused: EvictionRefused)."""

    def mig_parted_config(self, config_map: str) -> MigPartedConfig | None:
        """The GPU operator's mig-parted config in ConfigMap `namespace/name`; None where there is none
        to read (not found; a simulator applies any valid layout). Malformed: MigPartedConfigError."""


class WatchLease(Protocol):
    """The Kubernetes Lease an in-cluster watcher holds besides the database's (fleet/watch/lease.py)."""

    def lease_hold(self, *, name: str, namespace: str, holder: str, duration_seconds: int, now: datetime) -> bool:
        """Take or renew Lease `namespace`/`name`; False when another holder has it. Raises BackendError."""

    def close(self) -> None: ...


@runtime_checkable
class ClusterBackend(ClusterReader, ClusterWriter, NodeOperator, Protocol):
    """Everything ScaleDeck asks of a cluster; what `fleet.backends.registry.cluster_backend` returns.
    The Kubernetes and simulated backends implement all of it (tests/fleet/test_backend_contracts.py)."""

    def scaling_events(self, known: KnownOwners) -> tuple[list[ScalingEventFacts], list[str]]:
        """Only the scaling events (no full snapshot), for a cluster a watcher keeps current:
        the facts and the warnings (odd objects skipped). Raises BackendError."""
