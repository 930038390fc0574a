"""factory_boy factories for the accounts and fleet models. Every test builds its rows here.

Defaults describe a plausible GPU cluster: an A100 on-demand node in pool "a100", a vLLM
deployment of one replica on one whole GPU, a KEDA ScaledObject on queue depth. Override what
a test is about and nothing else:

    deployment = ModelDeploymentFactory(name="llama-70b", gpu_per_replica=4)
    pod = PodFactory(deployment=deployment, node=GpuNodeFactory(cluster=deployment.cluster))
    GpuFactory(node=pod.node, index=0, pod=pod)

Related rows share a cluster when you pass the cluster (or an object that has one) in.
`UserFactory(role="operator")` also creates the Membership; `ApiTokenFactory` keeps the raw
token on the instance as `.raw` (only its hash is stored).
"""

from __future__ import annotations

import functools
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from accounts.models import ROLE_RANK, ApiToken, Membership, Role, hash_token
from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import AutoscalerFacts
from fleet.models import (
    Autoscaler,
    Cluster,
    Gpu,
    GpuNode,
    MigDevice,
    ModelDeployment,
    NamespaceQuota,
    NodePool,
    Pod,
    SimulatedWorld,
)

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"

# ---------------------------------------------------------------------------- accounts


@functools.cache
def _password_hash() -> str:
    # Hashing "pw" once: a production-strength hash per user would make every test slower.
    return make_password("pw")


class UserFactory(factory.django.DjangoModelFactory):
    """A user whose password is "pw", with a Membership of `role` (viewer unless told; "" for none)."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.LazyFunction(lambda: _password_hash())

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        role = Role.VIEWER if extracted is None else extracted
        if create and role:
            Membership.objects.update_or_create(user=obj, defaults={"role": role})


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory, role="")
    role = Role.VIEWER


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A bot token. Its user gets at least the token's role; the raw value is on `.raw` (pass `raw=` to choose it)."""

    class Meta:
        model = ApiToken
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"bot-{n}")
    role = Role.VIEWER
    # Placeholders, replaced by `raw` below once the row exists (only the hash is stored).
    prefix = "sdk_"
    token_hash = factory.Sequence(lambda n: f"placeholder-{n}")

    @factory.post_generation
    def raw(obj, create, extracted, **kwargs):  # noqa: N805
        obj.raw = extracted or ApiToken.generate()
        obj.prefix, obj.token_hash = obj.raw[:12], hash_token(obj.raw)
        if not create:
            return
        obj.save(update_fields=["prefix", "token_hash"])
        membership = Membership.objects.filter(user=obj.user).first()
        if not obj.user.is_superuser and (membership is None or ROLE_RANK[membership.role] < ROLE_RANK[obj.role]):
            Membership.objects.update_or_create(user=obj.user, defaults={"role": obj.role})


# ---------------------------------------------------------------------------- fleet


class ClusterFactory(factory.django.DjangoModelFactory):
    """A Kubernetes cluster that synced just now, with no Prometheus (metrics unavailable)."""

    class Meta:
        model = Cluster
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"cluster-{n}")
    backend = Cluster.Backend.KUBERNETES
    kubeconfig_path = "/etc/scaledeck/kubeconfig"
    namespaces = factory.LazyFunction(lambda: ["llm"])
    region = "us-east-1"
    last_sync_at = factory.LazyFunction(timezone.now)
    last_sync_ok_at = factory.LazyAttribute(lambda c: c.last_sync_at)
    last_sync_duration_ms = 120
    last_sync_status = Cluster.SyncStatus.OK

    class Params:
        stale = factory.Trait(
            last_sync_at=factory.LazyFunction(timezone.now),
            last_sync_ok_at=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1)),
            last_sync_status=Cluster.SyncStatus.FAILED,
            last_sync_error="connection refused",
        )
        never_synced = factory.Trait(
            last_sync_at=None,
            last_sync_ok_at=None,
            last_sync_duration_ms=None,
            last_sync_status=Cluster.SyncStatus.NEVER,
        )


class SimulatedWorldFactory(factory.django.DjangoModelFactory):
    """The stored world of a simulated cluster. Pass `state=World(...).to_dict()` for a real one."""

    class Meta:
        model = SimulatedWorld
        django_get_or_create = ("cluster",)

    cluster = factory.SubFactory(ClusterFactory, backend=Cluster.Backend.SIMULATED, kubeconfig_path="")
    state = factory.LazyFunction(dict)
    seed = 7


class NodePoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NodePool
        django_get_or_create = ("cluster", "name")

    cluster = factory.SubFactory(ClusterFactory)
    name = "a100"
    instance_types = factory.LazyFunction(lambda: ["p4de.24xlarge"])
    capacity_types = factory.LazyFunction(lambda: ["on-demand"])
    gpu_limit = 64
    consolidation_policy = "WhenEmpty"


class GpuNodeFactory(factory.django.DjangoModelFactory):
    """An 8 x A100 80GB node, whole GPUs (no MIG). Use `mig=True` for a node in all-3g.40gb."""

    class Meta:
        model = GpuNode
        django_get_or_create = ("cluster", "name")

    class Params:
        mig = factory.Trait(
            mig_config="all-3g.40gb",
            mig_strategy="mixed",
            capacity=factory.LazyFunction(lambda: {"nvidia.com/gpu": 0, "nvidia.com/mig-3g.40gb": 16}),
            allocatable=factory.LazyFunction(lambda: {"nvidia.com/gpu": 0, "nvidia.com/mig-3g.40gb": 16}),
        )

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"gpu-node-{n}")
    node_pool = factory.SubFactory(NodePoolFactory, cluster=factory.SelfAttribute("..cluster"))
    instance_type = "p4de.24xlarge"
    zone = "us-east-1a"
    region = "us-east-1"
    capacity_type = GpuNode.CapacityType.ON_DEMAND
    gpu_product = A100
    gpu_count = 8
    gpu_memory_mib = 81920
    mig_config = ""
    mig_strategy = ""
    capacity = factory.LazyFunction(lambda: {"nvidia.com/gpu": 8})
    allocatable = factory.LazyFunction(lambda: {"nvidia.com/gpu": 8})
    ready = True
    unschedulable = False
    taints = factory.LazyFunction(lambda: [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}])


class GpuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Gpu
        django_get_or_create = ("node", "index")

    node = factory.SubFactory(GpuNodeFactory)
    index = factory.Sequence(lambda n: n % 8)
    product = factory.LazyAttribute(lambda g: g.node.gpu_product)
    memory_mib = factory.LazyAttribute(lambda g: g.node.gpu_memory_mib)
    mig_enabled = False
    pod = None


class MigDeviceFactory(factory.django.DjangoModelFactory):
    """A 3g.40gb slice of a MIG-enabled A100."""

    class Meta:
        model = MigDevice
        django_get_or_create = ("gpu", "slot")

    gpu = factory.SubFactory(GpuFactory, mig_enabled=True, node=factory.SubFactory(GpuNodeFactory, mig=True))
    profile = "3g.40gb"
    slot = factory.Sequence(lambda n: n % 2)
    compute_slices = 3
    memory_mib = 40192
    pod = None


class ModelDeploymentFactory(factory.django.DjangoModelFactory):
    """A vLLM deployment: 1 replica of 1 whole GPU, ready, with the probes set the safe way."""

    class Meta:
        model = ModelDeployment
        django_get_or_create = ("cluster", "namespace", "name")

    cluster = factory.SubFactory(ClusterFactory)
    namespace = "llm"
    name = factory.Sequence(lambda n: f"model-{n}")
    model = factory.LazyAttribute(lambda d: f"meta-llama/{d.name}")
    image = "vllm/vllm-openai:v0.10.1"
    replicas_desired = 1
    replicas_ready = factory.LazyAttribute(lambda d: d.replicas_desired)
    replicas_updated = factory.LazyAttribute(lambda d: d.replicas_desired)
    replicas_available = factory.LazyAttribute(lambda d: d.replicas_ready)
    gpu_resource = "nvidia.com/gpu"
    gpu_per_replica = 1
    tensor_parallel = factory.LazyAttribute(lambda d: max(d.gpu_per_replica, 1))
    max_model_len = 8192
    gpu_memory_utilization = 0.9
    rollout_condition = "Progressing: NewReplicaSetAvailable"
    termination_grace_seconds = 600
    liveness_initial_delay_seconds = 300
    readiness_initial_delay_seconds = 60
    max_unavailable = "0"
    max_surge = "1"
    labels = factory.LazyFunction(lambda: {"app.kubernetes.io/name": "vllm"})
    ttft_slo_seconds = None


class AutoscalerFactory(factory.django.DjangoModelFactory):
    """A KEDA ScaledObject on queue depth targeting `deployment` (same cluster and namespace)."""

    class Meta:
        model = Autoscaler
        django_get_or_create = ("cluster", "namespace", "kind", "name")

    deployment = factory.SubFactory(ModelDeploymentFactory)
    cluster = factory.LazyAttribute(lambda a: a.deployment.cluster)
    namespace = factory.LazyAttribute(lambda a: a.deployment.namespace)
    kind = ReplicaOwnerKind.SCALEDOBJECT
    name = factory.LazyAttribute(lambda a: a.deployment.name)
    target_name = factory.LazyAttribute(lambda a: a.deployment.name)
    min_replicas = 1
    max_replicas = 4
    metric = "vllm:num_requests_waiting > 5 per replica"
    paused_replicas = None
    paused = False
    owned_by_scaledobject = ""


def autoscaler_facts(kind: str, name: str, min_replicas: int = 1, max_replicas: int = 4, **fields) -> AutoscalerFacts:
    """An autoscaler as a backend reports it (no row): `autoscaler_facts(ReplicaOwnerKind.HPA, "llama")`."""
    fields.setdefault("namespace", "llm")
    fields.setdefault("target_name", "llama")
    fields.setdefault("metric", "")
    return AutoscalerFacts(kind=kind, name=name, min_replicas=min_replicas, max_replicas=max_replicas, **fields)


class PodFactory(factory.django.DjangoModelFactory):
    """A running, ready pod of `deployment` on `node` (a node in the deployment's cluster)."""

    class Meta:
        model = Pod
        django_get_or_create = ("cluster", "namespace", "name")

    deployment = factory.SubFactory(ModelDeploymentFactory)
    cluster = factory.LazyAttribute(lambda p: p.deployment.cluster if p.deployment else ClusterFactory())
    namespace = factory.LazyAttribute(lambda p: p.deployment.namespace if p.deployment else "llm")
    name = factory.LazyAttributeSequence(lambda p, n: f"{p.deployment.name if p.deployment else 'pod'}-{n:05x}")
    node = factory.SubFactory(GpuNodeFactory, cluster=factory.SelfAttribute("..cluster"))
    phase = "Running"
    ready = True
    started_at = factory.LazyFunction(timezone.now)
    gpu_requests = factory.LazyAttribute(
        lambda p: (
            {p.deployment.gpu_resource: p.deployment.gpu_per_replica}
            if p.deployment and p.deployment.gpu_resource
            else {}
        )
    )
    restarts = 0
    owner_kind = factory.LazyAttribute(lambda p: "Deployment" if p.deployment else "Job")
    owner_name = factory.LazyAttribute(lambda p: p.deployment.name if p.deployment else "batch-eval")
    waiting_reason = ""


class NamespaceQuotaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NamespaceQuota
        django_get_or_create = ("cluster", "namespace", "name")

    cluster = factory.SubFactory(ClusterFactory)
    namespace = "llm"
    name = "gpu-quota"
    hard = factory.LazyFunction(lambda: {"requests.nvidia.com/gpu": 16})
    used = factory.LazyFunction(lambda: {"requests.nvidia.com/gpu": 4})
