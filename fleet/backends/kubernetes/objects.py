"""Kubernetes objects as ScaleDeck reads them: plain JSON dicts in, `fleet.backends.base`
dataclasses out. No `kubernetes` import and no I/O: `fleet.backends.kubernetes` lists the
objects, this module interprets them.

What a snapshot keeps: every node (a GPU node that GPU feature discovery has not labelled yet is
still a node being provisioned); Deployments that request GPUs or MIG slices or run vLLM; pods
that request GPUs/MIG slices or belong to such a Deployment (DaemonSet agents and other CPU pods
are left out); autoscalers that target a Deployment; all ResourceQuotas (GPU keys only);
Karpenter NodePools. An object that cannot be understood is skipped and named in the warnings,
never allowed to fail the whole snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from fleet import mig
from fleet.backends.base import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    ClusterSnapshot,
    DeploymentFacts,
    NodeFacts,
    PodFacts,
    Taint,
    one_line,
)
from fleet.backends.kubernetes.autoscaling import parse_hpa, parse_nodepool, parse_quota, parse_scaledobject
from fleet.backends.kubernetes.pod_template import has_pre_stop, spreads_across_nodes, tolerates_taint
from fleet.backends.kubernetes.values import (
    OddObject,
    Warnings,
    as_dict,
    as_list,
    as_str,
    gpu_resources,
    identity,
    json_int,
    label_int,
    parse_all,
    parse_time,
    str_dict,
)
from fleet.backends.kubernetes.vllm_args import command_tokens, serving_facts

# --------------------------------------------------------------------------- nodes


def _is_ready(status: dict) -> bool:
    """A node's or pod's Ready condition is True."""
    conditions = map(as_dict, as_list(status.get("conditions")))
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _first(labels: dict[str, str], *keys: str) -> str:
    return next((labels[k] for k in keys if labels.get(k)), "")


def _capacity_type(labels: dict[str, str]) -> str:
    karpenter = labels.get("karpenter.sh/capacity-type")
    if karpenter:
        return "spot" if karpenter.lower() == "spot" else "on-demand"
    spot = (
        labels.get("eks.amazonaws.com/capacityType", "").upper() == "SPOT"
        or labels.get("cloud.google.com/gke-spot") == "true"
        or labels.get("cloud.google.com/gke-preemptible") == "true"
        or labels.get("kubernetes.azure.com/scalesetpriority", "").lower() == "spot"
        or labels.get("node.kubernetes.io/lifecycle", "").lower() == "spot"
    )
    return "spot" if spot else "on-demand"


_SINGLE_MIG_PRODUCT = re.compile(r"^(?P<product>.+)-MIG-(?P<profile>\d+g\.\d+gb(?:\+me)?)$")


@dataclass(frozen=True)
class _Gpus:
    product: str
    count: int  # physical GPUs
    memory_mib: int  # per physical GPU; 0 when unknown
    capacity: dict[str, int]
    allocatable: dict[str, int]


def _single_strategy_gpus(
    gpus: _Gpus, product: str, profile: str, mig_config: str | None, where: str, warnings: Warnings
) -> _Gpus:
    """A node on the MIG *single* strategy (the GPU operator's default) read as what it is.

    There GPU feature discovery overrides `nvidia.com/gpu.product` / `.count` / `.memory` with
    the MIG device's ("NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", 16, 40192) and the device plugin
    advertises the slices as `nvidia.com/gpu`. Taken at face value, 8 GPUs would read as 16
    whole GPUs with no MIG devices (and each cost half what it does). So: the product without
    its MIG suffix, the slices as `nvidia.com/mig-<profile>` (as the mixed strategy names them),
    and the physical count from how many slices of that profile one GPU holds.
    """
    devices = gpus.capacity.get(GPU_RESOURCE, gpus.count)
    per_gpu = (mig.layout_for_gpu(mig_config, product) or {}).get(profile) if mig_config else None
    model = mig.gpu_models().get(product)
    if not per_gpu and model and profile in model.profiles:
        per_gpu = model.profiles[profile].max_instances
    if per_gpu:
        count = -(-devices // per_gpu)
    else:
        warnings.add(f"{where}: cannot tell how many GPUs hold its {devices} MIG {profile} devices; one each")
        count = devices

    def as_slices(resources: dict[str, int]) -> dict[str, int]:
        return {**resources, GPU_RESOURCE: 0, f"{MIG_RESOURCE_PREFIX}{profile}": resources.get(GPU_RESOURCE, 0)}

    # The memory label is the slice's; the whole GPU's is not labelled on such a node.
    return _Gpus(product, count, 0, as_slices(gpus.capacity), as_slices(gpus.allocatable))


def _node(obj: dict, _namespace: str, name: str, warnings: Warnings) -> NodeFacts:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    labels = str_dict(meta.get("labels"))
    capacity = gpu_resources(status.get("capacity"), "capacity")
    where = f"node {name}"
    gpu_count = label_int(labels, "nvidia.com/gpu.count", where, warnings)
    if gpu_count is None:  # no GPU feature discovery: the device plugin's count is all we have
        gpu_count = capacity.get(GPU_RESOURCE, 0)
    gpus = _Gpus(
        product=labels.get("nvidia.com/gpu.product", ""),
        count=gpu_count,
        memory_mib=label_int(labels, "nvidia.com/gpu.memory", where, warnings) or 0,
        capacity=capacity,
        allocatable=gpu_resources(status.get("allocatable"), "allocatable"),
    )
    mig_config = labels.get("nvidia.com/mig.config") or None
    if mig_config == "all-disabled":
        mig_config = None
    strategy = labels.get("nvidia.com/mig.strategy")
    single = _SINGLE_MIG_PRODUCT.match(gpus.product) if strategy == "single" else None
    if single:
        gpus = _single_strategy_gpus(gpus, single["product"], single["profile"], mig_config, where, warnings)
    has_mig = mig_config is not None or any(k.startswith(MIG_RESOURCE_PREFIX) and v for k, v in gpus.capacity.items())
    ready = _is_ready(status)
    taints = tuple(
        Taint(key=as_str(t.get("key")), value=as_str(t.get("value")), effect=as_str(t.get("effect")))
        for t in as_list(spec.get("taints"))
        if isinstance(t, dict) and as_str(t.get("key"))
    )
    return NodeFacts(
        name=name,
        instance_type=_first(labels, "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"),
        zone=_first(labels, "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
        region=_first(labels, "topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"),
        node_pool=_first(
            labels,
            "karpenter.sh/nodepool",
            "eks.amazonaws.com/nodegroup",
            "cloud.google.com/gke-nodepool",
            "kubernetes.azure.com/agentpool",
        ),
        capacity_type=_capacity_type(labels),
        gpu_product=gpus.product,
        gpu_count=gpus.count,
        gpu_memory_mib=gpus.memory_mib,
        mig_config=mig_config,
        mig_strategy=strategy if has_mig and strategy in ("single", "mixed") else None,
        capacity=gpus.capacity,
        allocatable=gpus.allocatable,
        ready=ready,
        unschedulable=spec.get("unschedulable") is True,
        taints=taints,
        created_at=parse_time(meta.get("creationTimestamp")),
    )


# --------------------------------------------------------------------------- pods


def _add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    out = dict(total)
    for key, value in more.items():
        out[key] = out.get(key, 0) + value
    return out


def _container_gpus(container: object, what: str) -> dict[str, int]:
    # Extended resources may be given as limits only: the request then defaults to the limit.
    resources = as_dict(as_dict(container).get("resources"))
    merged = {**as_dict(resources.get("limits")), **as_dict(resources.get("requests"))}
    return gpu_resources(merged, what)


def pod_gpu_requests(pod_spec: object) -> dict[str, int]:
    """What the scheduler reserves for a pod: containers plus sidecars, or the largest init
    container (plus the sidecars started before it) when that is more. Zero counts dropped."""
    spec = as_dict(pod_spec)
    total: dict[str, int] = {}
    for c in as_list(spec.get("containers")):
        total = _add(total, _container_gpus(c, "requests"))
    sidecars: dict[str, int] = {}
    peak: dict[str, int] = {}
    for c in as_list(spec.get("initContainers")):
        gpus = _container_gpus(c, "init requests")
        if as_dict(c).get("restartPolicy") == "Always":
            sidecars = _add(sidecars, gpus)
        else:
            for key, value in _add(sidecars, gpus).items():
                peak[key] = max(peak.get(key, 0), value)
    total = _add(total, sidecars)
    for key, value in peak.items():
        total[key] = max(total.get(key, 0), value)
    return {k: v for k, v in total.items() if v > 0}


_PULLING = {"ContainerCreating", "PodInitializing"}
_PHASES = {"Pending", "Running", "Succeeded", "Failed", "Unknown"}


def _waiting_reason(meta: dict, spec: dict, status: dict, phase: str, ready: bool) -> str:
    if meta.get("deletionTimestamp"):
        return "terminating"
    if phase == "Succeeded" or (ready and phase == "Running"):
        return ""
    statuses = [as_dict(s) for s in as_list(status.get("containerStatuses"))]
    if phase == "Failed":
        terminated = [as_str(as_dict(as_dict(s.get("state")).get("terminated")).get("reason")) for s in statuses]
        return one_line(as_str(status.get("reason")) or next((r for r in terminated if r), "") or "failed", 100)
    if not as_str(spec.get("nodeName")):
        return "waiting for a node"
    init_specs = map(as_dict, as_list(spec.get("initContainers")))
    sidecars = {as_str(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    for s in map(as_dict, as_list(status.get("initContainerStatuses"))):
        state = as_dict(s.get("state"))
        waiting = as_str(as_dict(state.get("waiting")).get("reason"))
        if waiting:
            return "pulling image" if waiting in _PULLING else one_line(waiting, 100)
        if "running" in state and as_str(s.get("name")) not in sidecars:
            return "running init containers"
    for s in statuses:
        state = as_dict(s.get("state"))
        waiting = as_str(as_dict(state.get("waiting")).get("reason"))
        if waiting:
            return "pulling image" if waiting in _PULLING else one_line(waiting, 100)
        terminated = as_str(as_dict(state.get("terminated")).get("reason"))
        if terminated:
            return one_line(terminated, 100)
    if not statuses:
        return "pulling image"  # scheduled; the kubelet has not reported containers yet
    if any("running" in as_dict(s.get("state")) for s in statuses):
        return "loading model weights"
    return ""


def _restarts(status: dict) -> int:
    total = 0
    for s in [*as_list(status.get("containerStatuses")), *as_list(status.get("initContainerStatuses"))]:
        total += json_int(as_dict(s).get("restartCount"), "restartCount", default=0)
    return total


@dataclass(frozen=True)
class _Owners:
    replicasets: dict[tuple[str, str], str]  # (namespace, ReplicaSet) -> Deployment name
    deployments: set[tuple[str, str]]  # the model Deployments the snapshot keeps


def _controller(meta: dict) -> tuple[str, str]:
    refs = [as_dict(r) for r in as_list(meta.get("ownerReferences"))]
    ref = next((r for r in refs if r.get("controller") is True), refs[0] if refs else {})
    return as_str(ref.get("kind")), as_str(ref.get("name"))


def _pod(obj: dict, namespace: str, name: str, owners: _Owners) -> PodFacts | None:
    """A pod holding GPUs or belonging to a model Deployment; None for any other pod."""
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    gpu_requests = pod_gpu_requests(spec)
    kind, owner = _controller(meta)
    if kind == "ReplicaSet":
        deployment = owners.replicasets.get((namespace, owner))
        if deployment is None:
            # A ReplicaSet born after our list: its name is <deployment>-<pod-template-hash>.
            template_hash = str_dict(meta.get("labels")).get("pod-template-hash", "")
            guess = owner.removesuffix(f"-{template_hash}") if template_hash else ""
            deployment = guess if guess != owner and (namespace, guess) in owners.deployments else None
        if deployment is not None:
            kind, owner = "Deployment", deployment
    if not gpu_requests and (kind != "Deployment" or (namespace, owner) not in owners.deployments):
        return None
    phase = as_str(status.get("phase"))
    phase = phase if phase in _PHASES else "Unknown"
    ready = _is_ready(status)
    return PodFacts(
        namespace=namespace,
        name=name,
        node_name=as_str(spec.get("nodeName")),
        phase=phase,
        ready=ready,
        started_at=parse_time(status.get("startTime")),
        gpu_requests=gpu_requests,
        restarts=_restarts(status),
        owner_kind=kind,
        owner_name=owner,
        waiting_reason=_waiting_reason(meta, spec, status, phase, ready),
    )


# --------------------------------------------------------------------------- deployments


def _serving_container(containers: list[dict]) -> dict:
    """The vLLM container, else the one holding GPUs, else the first."""
    for c in containers:
        if serving_facts(c).model or "vllm" in " ".join(command_tokens(c)):
            return c
    for c in containers:
        if _container_gpus(c, "requests"):
            return c
    return containers[0] if containers else {}


def _rollout_condition(status: dict) -> str:
    conditions = {as_str(c.get("type")): c for c in map(as_dict, as_list(status.get("conditions")))}
    failure = conditions.get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        return one_line(f"ReplicaFailure: {as_str(failure.get('reason'))}", 200)
    for kind in ("Progressing", "Available"):
        c = conditions.get(kind)
        if c:
            return one_line(f"{kind}: {as_str(c.get('reason')) or as_str(c.get('status'))}", 200)
    return ""


def _initial_delay(probe: object, what: str) -> int | None:
    if not isinstance(probe, dict):
        return None
    return json_int(probe.get("initialDelaySeconds"), what, default=0)


def _as_written(value: object, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{1,9}%?", value):
        return value
    raise OddObject(f"rolling update bound is neither a count nor a percentage ({one_line(value, 20)!r})")


def _deployment(obj: dict, namespace: str, name: str, warnings: Warnings) -> DeploymentFacts | None:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    template = as_dict(as_dict(spec.get("template")).get("spec"))
    containers = [c for c in as_list(template.get("containers")) if isinstance(c, dict)]
    gpus = pod_gpu_requests(template)
    gpu_resource = next(
        (k for k in sorted(gpus, key=lambda k: (k != GPU_RESOURCE, not k.startswith(MIG_RESOURCE_PREFIX), k))), ""
    )
    serving = _serving_container(containers)
    facts = serving_facts(serving)
    if not gpu_resource and not facts.model:
        return None  # not a model deployment (coredns, operators, ...)
    for problem in facts.problems:
        warnings.add(f"deployment {namespace}/{name}: {problem}")
    strategy = as_dict(spec.get("strategy"))
    if strategy.get("type") == "Recreate":  # every pod goes down first: say so in the same terms
        max_unavailable, max_surge = "100%", "0"
    else:
        rolling = as_dict(strategy.get("rollingUpdate"))
        max_unavailable = _as_written(rolling.get("maxUnavailable"), "25%")
        max_surge = _as_written(rolling.get("maxSurge"), "25%")
    return DeploymentFacts(
        namespace=namespace,
        name=name,
        model=facts.model,
        image=one_line(as_str(serving.get("image")), 500),
        replicas_desired=json_int(spec.get("replicas"), "spec.replicas", default=1),
        replicas_ready=json_int(status.get("readyReplicas"), "status.readyReplicas", default=0),
        replicas_updated=json_int(status.get("updatedReplicas"), "status.updatedReplicas", default=0),
        replicas_available=json_int(status.get("availableReplicas"), "status.availableReplicas", default=0),
        gpu_resource=gpu_resource,
        gpu_per_replica=gpus.get(gpu_resource, 0),
        tensor_parallel=facts.tensor_parallel,
        max_model_len=facts.max_model_len,
        gpu_memory_utilization=facts.gpu_memory_utilization,
        rollout_condition=_rollout_condition(status),
        termination_grace_seconds=json_int(
            template.get("terminationGracePeriodSeconds"), "terminationGracePeriodSeconds", default=30
        ),
        liveness_initial_delay_seconds=_initial_delay(serving.get("livenessProbe"), "livenessProbe delay"),
        readiness_initial_delay_seconds=_initial_delay(serving.get("readinessProbe"), "readinessProbe delay"),
        max_unavailable=max_unavailable,
        max_surge=max_surge,
        resource_version=as_str(meta.get("resourceVersion")),
        labels=str_dict(meta.get("labels")),
        dtype=facts.dtype,
        quantization=facts.quantization,
        tolerates_gpu_taint=tolerates_taint(template),
        spreads_across_nodes=spreads_across_nodes(template),
        has_pre_stop=has_pre_stop(serving),
    )


# --------------------------------------------------------------------------- the snapshot


def _slices_on_single_strategy_nodes(pods: list[PodFacts], nodes: list[NodeFacts]) -> list[PodFacts]:
    """On a single-strategy MIG node a pod asking for `nvidia.com/gpu` gets a MIG slice: say so."""
    profiles = {n.name: next(iter(n.mig_devices), "") for n in nodes if n.mig_strategy == "single"}
    out = []
    for p in pods:
        profile = profiles.get(p.node_name)
        if profile and p.gpu_requests.get(GPU_RESOURCE):
            requests, slices = dict(p.gpu_requests), f"{MIG_RESOURCE_PREFIX}{profile}"
            requests[slices] = requests.get(slices, 0) + requests.pop(GPU_RESOURCE)
            p = replace(p, gpu_requests=requests)
        out.append(p)
    return out


@dataclass(frozen=True)
class RawLists:
    """The items of each list call, as the API server sent them. `scaledobjects` / `nodepools`
    are None when their CRD is not installed."""

    nodes: list
    pods: list
    replicasets: list  # metadata is enough (their owner)
    deployments: list
    hpas: list
    scaledobjects: list | None
    quotas: list
    nodepools: list | None


def read_snapshot(raw: RawLists, *, taken_at: datetime) -> tuple[ClusterSnapshot, list[str]]:
    """The snapshot these lists describe, and what was skipped or could not be read (one line each)."""
    warnings = Warnings()
    nodes = parse_all("node", raw.nodes, lambda o, ns, n: _node(o, ns, n, warnings), warnings, False)
    deployments = parse_all("deployment", raw.deployments, lambda o, ns, n: _deployment(o, ns, n, warnings), warnings)
    owners = _Owners(replicasets={}, deployments={(d.namespace, d.name) for d in deployments})
    for rs in raw.replicasets:
        try:
            namespace, name = identity(rs)
        except OddObject:
            continue  # a ReplicaSet we cannot name only costs its pods their Deployment link
        kind, owner = _controller(as_dict(rs.get("metadata")))
        if kind == "Deployment" and owner:
            owners.replicasets[(namespace, name)] = owner
    pods = parse_all("pod", raw.pods, lambda o, ns, n: _pod(o, ns, n, owners), warnings)
    pods = _slices_on_single_strategy_nodes(pods, nodes)
    autoscalers = parse_all("hpa", raw.hpas, parse_hpa, warnings)
    autoscalers += parse_all(
        "scaledobject",
        raw.scaledobjects or [],
        lambda o, ns, n: parse_scaledobject(o, ns, n, warnings),
        warnings,
    )
    quotas = parse_all("resourcequota", raw.quotas, parse_quota, warnings)
    node_pools = parse_all("nodepool", raw.nodepools or [], parse_nodepool, warnings, False)
    snapshot = ClusterSnapshot(
        taken_at=taken_at,
        nodes=tuple(nodes),
        pods=tuple(pods),
        deployments=tuple(deployments),
        autoscalers=tuple(autoscalers),
        quotas=tuple(quotas),
        node_pools=tuple(node_pools),
        keda_installed=raw.scaledobjects is not None,
    )
    return snapshot, warnings.result()


# --------------------------------------------------------------------------- one object at a time (the watch)
# The watch re-reads only the objects that changed; these are the readers `read_snapshot` uses,
# one object at a time, with the context (owners, nodes) the caller keeps current.


def controller_of(obj: dict) -> tuple[str, str]:
    """(kind, name) of an object's controlling owner; ("", "") when it has none."""
    return _controller(as_dict(obj.get("metadata")))


def read_node(obj: dict, name: str, warnings: Warnings) -> NodeFacts:
    return _node(obj, "", name, warnings)


def read_deployment(obj: dict, namespace: str, name: str, warnings: Warnings) -> DeploymentFacts | None:
    return _deployment(obj, namespace, name, warnings)


def read_pod(
    obj: dict, namespace: str, name: str, *, replicasets: dict, deployments, node: NodeFacts | None
) -> PodFacts | None:
    """A pod as `read_snapshot` keeps it; `replicasets` maps (namespace, ReplicaSet) to its
    Deployment, `deployments` holds the model Deployments' keys, `node` is the pod's node."""
    facts = _pod(obj, namespace, name, _Owners(replicasets=replicasets, deployments=deployments))
    if facts is None or node is None:
        return facts
    return _slices_on_single_strategy_nodes([facts], [node])[0]
