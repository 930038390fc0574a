"""What exists: clusters, node pools, GPU nodes, GPUs, MIG devices, model deployments, pods.

Rows mirror what the last sync saw. Objects that disappear from a cluster are marked gone
(`gone_at`), never deleted: audit history and accrued cost keep pointing at them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from fleet.autoscalers import AUTOSCALER_KIND_CHOICES
from fleet.backends.base import AutoscalerFacts


def validate_service_url(value: str) -> None:
    """http(s) with a host. Unlike URLValidator, accepts in-cluster names (`http://prometheus:9090`)."""
    from urllib.parse import urlparse

    from django.core.exceptions import ValidationError

    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValidationError(f"{value!r} is not an http(s) URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError(f"{value!r} is not an http(s) URL")


class AliveQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(gone_at__isnull=True)


class Cluster(models.Model):
    class Backend(models.TextChoices):
        SIMULATED = "simulated", "Simulated"
        KUBERNETES = "kubernetes", "Kubernetes"

    class SyncStatus(models.TextChoices):
        NEVER = "never", "never synced"
        OK = "ok", "ok"
        FAILED = "failed", "failed"

    name = models.SlugField(max_length=63, unique=True)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.SIMULATED)
    # Kubernetes connection: a kubeconfig (+ context), or the pod's ServiceAccount.
    kubeconfig_path = models.CharField(max_length=500, blank=True)
    kube_context = models.CharField(max_length=253, blank=True)
    in_cluster = models.BooleanField(default=False)
    request_timeout_seconds = models.FloatField(default=10.0)
    # Namespaces ScaleDeck may read and change. Empty: read all, change none.
    namespaces = models.JSONField(default=list, blank=True)
    # Prometheus (or Thanos/Mimir). Secrets are file paths, never stored in the database.
    prometheus_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_service_url],
        help_text="e.g. http://prometheus.monitoring:9090",
    )
    prometheus_bearer_token_file = models.CharField(max_length=500, blank=True)
    prometheus_basic_auth_user = models.CharField(max_length=200, blank=True)
    prometheus_basic_auth_password_file = models.CharField(max_length=500, blank=True)
    prometheus_timeout_seconds = models.FloatField(default=3.0)
    prometheus_namespace_label = models.CharField(max_length=100, default="namespace")
    prometheus_pod_label = models.CharField(max_length=100, default="pod")
    # dcgm-exporter's Helm chart scrapes with honorLabels false, so its pod labels often arrive
    # renamed (exported_namespace/exported_pod) even where vLLM's do not: set separately.
    prometheus_gpu_namespace_label = models.CharField(max_length=100, default="namespace")
    prometheus_gpu_pod_label = models.CharField(max_length=100, default="pod")
    region = models.CharField(max_length=50, blank=True, help_text="default region for pricing")

    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_ok_at = models.DateTimeField(null=True, blank=True)
    last_sync_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=8, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_sync_error = models.CharField(max_length=500, blank=True)
    # The lease of the watcher (`cluster_watch`) keeping this cluster current: who holds it and
    # until when. While it is fresh, the beat's full sync leaves the cluster to the watcher.
    watch_holder = models.CharField(max_length=200, blank=True)
    watch_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_stale(self) -> bool:
        if self.last_sync_ok_at is None:
            return True
        age = (timezone.now() - self.last_sync_ok_at).total_seconds()
        return age > settings.SCALEDECK_STALE_AFTER_SECONDS

    def namespace_writable(self, namespace: str) -> bool:
        """Writes go only to allow-listed namespaces; an empty list allows none."""
        return namespace in (self.namespaces or [])

    def namespace_readable(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces


class SimulatedWorld(models.Model):
    """The serialized state of a simulated cluster (simulator.World.to_dict())."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="simulated_world")
    state = models.JSONField()
    seed = models.IntegerField(default=7)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"simulated world of {self.cluster_id}"


class NodePool(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="node_pools")
    name = models.CharField(max_length=253)
    instance_types = models.JSONField(default=list, blank=True)
    capacity_types = models.JSONField(default=list, blank=True)
    gpu_limit = models.IntegerField(null=True, blank=True)
    consolidation_policy = models.CharField(max_length=50, blank=True)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="nodepool_unique_name")]

    def __str__(self) -> str:
        return self.name


class GpuNode(models.Model):
    class CapacityType(models.TextChoices):
        SPOT = "spot", "spot"
        ON_DEMAND = "on-demand", "on-demand"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=253)
    node_pool = models.ForeignKey(NodePool, on_delete=models.SET_NULL, null=True, blank=True, related_name="nodes")
    instance_type = models.CharField(max_length=100, blank=True)
    zone = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    capacity_type = models.CharField(max_length=10, choices=CapacityType.choices, default=CapacityType.ON_DEMAND)
    gpu_product = models.CharField(max_length=100, blank=True)
    gpu_count = models.PositiveIntegerField(default=0)
    gpu_memory_mib = models.PositiveIntegerField(default=0)
    mig_config = models.CharField(max_length=100, blank=True)
    mig_strategy = models.CharField(max_length=10, blank=True)
    capacity = models.JSONField(default=dict, blank=True)
    allocatable = models.JSONField(default=dict, blank=True)
    ready = models.BooleanField(default=False)
    unschedulable = models.BooleanField(default=False)
    taints = models.JSONField(default=list, blank=True)
    k8s_created_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="gpunode_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def mig_devices(self) -> dict[str, int]:
        prefix = "nvidia.com/mig-"
        return {k.removeprefix(prefix): v for k, v in sorted(self.capacity.items()) if k.startswith(prefix) and v}


class Gpu(models.Model):
    """One physical GPU of a node. `pod` holds it when a pod requested whole GPUs."""

    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    product = models.CharField(max_length=100, blank=True)
    memory_mib = models.PositiveIntegerField(default=0)
    mig_enabled = models.BooleanField(default=False)
    pod = models.ForeignKey("Pod", on_delete=models.SET_NULL, null=True, blank=True, related_name="gpus")

    class Meta:
        ordering = ["node", "index"]
        constraints = [models.UniqueConstraint(fields=["node", "index"], name="gpu_unique_index")]

    def __str__(self) -> str:
        return f"{self.node.name}/gpu{self.index}"


class MigDevice(models.Model):
    """One MIG slice of a GPU, e.g. a 3g.40gb instance; `pod` is the pod holding it."""

    gpu = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="mig_devices")
    profile = models.CharField(max_length=50)
    slot = models.PositiveSmallIntegerField(help_text="instance index within the GPU")
    compute_slices = models.PositiveSmallIntegerField(default=1)
    memory_mib = models.PositiveIntegerField(default=0)
    pod = models.ForeignKey("Pod", on_delete=models.SET_NULL, null=True, blank=True, related_name="mig_devices")

    class Meta:
        ordering = ["gpu", "slot"]
        constraints = [models.UniqueConstraint(fields=["gpu", "slot"], name="migdevice_unique_slot")]

    def __str__(self) -> str:
        return f"{self.gpu}/{self.profile}#{self.slot}"


class ModelDeployment(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="deployments")
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=253)
    model = models.CharField(max_length=300, blank=True)
    image = models.CharField(max_length=500, blank=True)
    replicas_desired = models.PositiveIntegerField(default=0)
    replicas_ready = models.PositiveIntegerField(default=0)
    replicas_updated = models.PositiveIntegerField(default=0)
    replicas_available = models.PositiveIntegerField(default=0)
    gpu_resource = models.CharField(max_length=100, blank=True)
    gpu_per_replica = models.PositiveIntegerField(default=0)
    tensor_parallel = models.PositiveSmallIntegerField(default=1)
    max_model_len = models.PositiveIntegerField(null=True, blank=True)
    gpu_memory_utilization = models.FloatField(null=True, blank=True)
    rollout_condition = models.CharField(max_length=200, blank=True)
    termination_grace_seconds = models.PositiveIntegerField(null=True, blank=True)
    liveness_initial_delay_seconds = models.PositiveIntegerField(null=True, blank=True)
    readiness_initial_delay_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_unavailable = models.CharField(max_length=20, blank=True)
    max_surge = models.CharField(max_length=20, blank=True)
    resource_version = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    dtype = models.CharField(max_length=40, blank=True, help_text="vLLM --dtype; empty = auto")
    quantization = models.CharField(max_length=40, blank=True, help_text="vLLM --quantization; empty = none")
    # Read from the pod template; null = not known.
    tolerates_gpu_taint = models.BooleanField(null=True, blank=True)
    spreads_across_nodes = models.BooleanField(null=True, blank=True, help_text="replicas never share a node")
    has_pre_stop = models.BooleanField(null=True, blank=True, help_text="the serving container has a preStop hook")
    # Set in ScaleDeck, not read from the cluster.
    ttft_slo_seconds = models.FloatField(null=True, blank=True, help_text="TTFT p95 objective, seconds")
    first_seen_at = models.DateTimeField(default=timezone.now)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="deployment_unique_name")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def slo_seconds(self) -> float:
        return self.ttft_slo_seconds or settings.SCALEDECK_DEFAULT_TTFT_SLO_SECONDS


class Autoscaler(models.Model):
    """An HPA or KEDA ScaledObject in the cluster, linked to the Deployment it targets."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="autoscalers")
    namespace = models.CharField(max_length=63)
    kind = models.CharField(max_length=12, choices=AUTOSCALER_KIND_CHOICES)  # a ReplicaOwnerKind
    name = models.CharField(max_length=253)
    target_name = models.CharField(max_length=253)
    deployment = models.ForeignKey(
        ModelDeployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="autoscalers"
    )
    min_replicas = models.PositiveIntegerField(default=1)
    max_replicas = models.PositiveIntegerField(default=1)
    metric = models.CharField(max_length=300, blank=True)
    paused_replicas = models.PositiveIntegerField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    owned_by_scaledobject = models.CharField(max_length=253, blank=True)
    resource_version = models.CharField(max_length=64, blank=True)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "namespace", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "kind", "name"], name="autoscaler_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"

    def facts(self) -> AutoscalerFacts:
        """The row as the value `fleet.autoscalers.replica_owner` and the lint read."""
        return AutoscalerFacts(
            kind=self.kind,
            name=self.name,
            target_name=self.target_name,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            metric=self.metric,
            paused_replicas=self.paused_replicas,
            paused=self.paused,
            resource_version=self.resource_version,
            owned_by_scaledobject=self.owned_by_scaledobject,
            namespace=self.namespace,
        )


class Pod(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="pods")
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=253)
    deployment = models.ForeignKey(
        ModelDeployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="pods"
    )
    node = models.ForeignKey(GpuNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="pods")
    phase = models.CharField(max_length=20, blank=True)
    ready = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    gpu_requests = models.JSONField(default=dict, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    owner_kind = models.CharField(max_length=50, blank=True)
    owner_name = models.CharField(max_length=253, blank=True)
    waiting_reason = models.CharField(max_length=200, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="pod_unique_name")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class NamespaceQuota(models.Model):
    """A ResourceQuota's GPU and MIG entries (`requests.nvidia.com/gpu`, `requests.nvidia.com/mig-*`)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="quotas")
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=253)
    hard = models.JSONField(default=dict, blank=True)
    used = models.JSONField(default=dict, blank=True)
    resource_version = models.CharField(max_length=64, blank=True)
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = AliveQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="quota_unique_name")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ReplicaChange(models.Model):
    """A deployment's desired and ready replicas from the moment a sync saw them change.

    The replicas chart's source where kube-state-metrics is not installed: the value at any
    time is that of the latest change at or before it. Written only when a count changes (a
    sync where nothing changed writes nothing), and pruned to REPLICA_HISTORY_KEEP by
    `fleet.replica_history`, keeping each deployment's last change before that horizon.
    """

    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="replica_changes")
    at = models.DateTimeField()
    desired = models.PositiveIntegerField()
    ready = models.PositiveIntegerField()

    class Meta:
        ordering = ["deployment", "at"]
        indexes = [models.Index(fields=["deployment", "at"], name="replicachange_deployment_at")]

    def __str__(self) -> str:
        return f"{self.deployment_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.ready}/{self.desired}"


class SloChange(models.Model):
    """A change of a deployment's TTFT objective: who, from what to what, why, when.

    The objective is ScaleDeck's own setting (nothing is written to a cluster, so it is not a
    ScaleAction), yet it decides what pages and alerts call a breach: changing it is audited too.
    `None` on either side is the default objective (SCALEDECK_DEFAULT_TTFT_SLO_SECONDS).
    """

    deployment = models.ForeignKey(ModelDeployment, on_delete=models.CASCADE, related_name="slo_changes")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="slo_changes"
    )
    actor_label = models.CharField(max_length=120)
    before_seconds = models.FloatField(null=True, blank=True)
    after_seconds = models.FloatField(null=True, blank=True)
    reason = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["deployment", "at"], name="slochange_deployment_at")]

    def __str__(self) -> str:
        return (
            f"{self.deployment_id}: TTFT objective {self.before_seconds} -> {self.after_seconds} by {self.actor_label}"
        )


class EventKind(models.TextChoices):
    """The timeline's vocabulary (the API's `kind`); the backends speak it too."""

    METRIC_ABOVE_TARGET = "metric_above_target", "metric above target"
    METRIC_BELOW_TARGET = "metric_below_target", "metric below target"
    DESIRED_CHANGED = "desired_changed", "desired replicas changed"
    SCALE_ACTION = "scale_action", "scale action"
    POD_CREATED = "pod_created", "pod created"
    POD_SCHEDULED = "pod_scheduled", "pod scheduled"
    SCHEDULING_FAILED = "scheduling_failed", "scheduling failed"
    IMAGE_PULLING = "image_pulling", "pulling image"
    IMAGE_PULLED = "image_pulled", "image pulled"
    CONTAINER_STARTED = "container_started", "container started"
    POD_READY = "pod_ready", "pod ready"
    FIRST_TOKEN = "first_token", "first token served"
    NODECLAIM_LAUNCHED = "nodeclaim_launched", "node launched"
    NODE_REGISTERED = "node_registered", "node registered"
    NODE_READY = "node_ready", "node ready"
    POD_DELETED = "pod_deleted", "pod deleted"
    OTHER = "other", "other"


class ScalingEvent(models.Model):
    """One stored moment of a scaling story: a Kubernetes Event, a pod condition's transition or
    a NodeClaim condition, as a sync saw it (the timeline's and the cold starts' raw material).

    Deduplicated on (cluster, uid, count): a sync that sees the same Event again stores
    nothing, a repeated Event (its count went up) is a new occurrence. Kept
    SCALEDECK_EVENT_RETENTION_DAYS, pruned by `fleet.events.scaling_events_prune`. Node-level
    rows (NodeClaims) have no deployment; they join one through `node_name`.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="scaling_events")
    uid = models.CharField(max_length=300)
    count = models.PositiveIntegerField(default=1)
    at = models.DateTimeField()
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    reason = models.CharField(max_length=100, blank=True)
    namespace = models.CharField(max_length=63, blank=True)
    object_kind = models.CharField(max_length=40)
    object_name = models.CharField(max_length=253)
    message = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16)
    deployment = models.ForeignKey(
        ModelDeployment, on_delete=models.CASCADE, null=True, blank=True, related_name="scaling_events"
    )
    node_name = models.CharField(max_length=253, blank=True)
    node_pool = models.CharField(max_length=253, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "uid", "count"], name="scalingevent_unique_occurrence")
        ]
        indexes = [
            models.Index(fields=["deployment", "at"], name="scalingevent_deployment_at"),
            models.Index(fields=["cluster", "node_name", "at"], name="scalingevent_node_at"),
            models.Index(fields=["at"], name="scalingevent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.object_kind}/{self.object_name}"
