"""The Kubernetes cluster backend: the only module in ScaleDeck that imports `kubernetes`.

It reads a cluster with list calls only and turns what it sees into the dataclasses of
`fleet.backends.base`; it writes with JSON merge patches that carry the resourceVersion they
were computed from. Each backend has its own ApiClient (never the client's global default
configuration), so one process can talk to many clusters.

Reading: responses are taken raw (`_preload_content=False`) and parsed with `json.loads`;
deserialising a 20,000-pod list into the client's model objects costs many times more (see
`bench/sync_kubernetes.py`). Lists are paged (`limit`/`continue`, as kubectl does) so a big
cluster never asks the API server for one huge response; ReplicaSets are listed as metadata
only (all we need is their owner). Everything a cluster returns is untrusted: an object that
cannot be understood is skipped and named in `last_warnings()`, never allowed to fail the
whole snapshot.

What the snapshot keeps: every node (a GPU node that GPU feature discovery has not labelled
yet is still a node being provisioned); Deployments that request GPUs or MIG slices or run
vLLM; pods that request GPUs/MIG slices or belong to such a Deployment (DaemonSet agents and
other CPU pods are left out); autoscalers that target a Deployment; all ResourceQuotas (GPU keys
only); Karpenter NodePools.

RBAC the ServiceAccount needs (ClusterRole, or Roles per allow-listed namespace):
  get/list: nodes (cluster), pods, resourcequotas, apps deployments, apps replicasets,
  autoscaling horizontalpodautoscalers, keda.sh scaledobjects, karpenter.sh nodepools (cluster);
  get/patch for writes: apps deployments/scale, keda.sh scaledobjects, autoscaling
  horizontalpodautoscalers, resourcequotas.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException

from fleet.backends.base import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    UNCHANGED,
    AutoscalerFacts,
    BackendError,
    ClusterSnapshot,
    ConflictError,
    DeploymentFacts,
    NodeFacts,
    NodePoolFacts,
    ObjectState,
    PodFacts,
    QuotaFacts,
    Taint,
)

MERGE_PATCH = "application/merge-patch+json"
# Ask for metadata only; a server that cannot do it falls back to full objects.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
NVIDIA_PREFIX = "nvidia.com/"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED = "autoscaling.keda.sh/paused"
MAX_COUNT = 1_000_000  # more GPUs, replicas or slices than this in one place is garbage, not a cluster
MAX_WARNINGS = 200
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KARPENTER = ("karpenter.sh", "v1", "nodepools")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class _Odd(Exception):
    """An object (or a field of it) that a real API server would not have produced."""


# --------------------------------------------------------------------------- small readers


def _d(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def _clean(text: object, limit: int = 160) -> str:
    """One printable line, cut to `limit`: safe to put in a message."""
    line = "".join(ch if ch.isprintable() else " " for ch in str(text)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _str_dict(value: object) -> dict[str, str]:
    return {k: v for k, v in _d(value).items() if isinstance(k, str) and isinstance(v, str)}


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?\d{1,3}))?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("8", "1k", "500m", "1Gi", "1e3") as a Decimal."""
    if isinstance(value, bool):
        raise ValueError("not a quantity")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError("not a quantity")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError("not a quantity")
    number, binary, decimal, exponent = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError("not a quantity") from None
    if binary:
        return amount * _BINARY[binary]
    if decimal:
        return amount * _DECIMAL[decimal]
    if exponent:
        return amount.scaleb(int(exponent))
    return amount


def _count(value: object, what: str) -> int:
    """A whole, non-negative, sane count (GPUs, slices) from a quantity."""
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise _Odd(f"{what} is not a quantity ({_clean(value, 40)!r})") from None
    if amount < 0 or amount > MAX_COUNT or amount != amount.to_integral_value():
        raise _Odd(f"{what} is not a sane whole count ({_clean(value, 40)!r})")
    return int(amount)


def _int(value: object, what: str, *, default: int | None = None, minimum: int = 0) -> int:
    """An integer field (replicas, seconds) as the API serves it: a JSON number, nothing else."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 2**31 - 1:
        raise _Odd(f"{what} is not a valid number ({_clean(value, 40)!r})")
    return value


def _label_int(labels: dict[str, str], key: str, where: str, warnings: _Warnings) -> int | None:
    value = labels.get(key)
    if value is None:
        return None
    if value.isdigit() and int(value) <= MAX_COUNT * 1000:
        return int(value)
    warnings.add(f"{where}: label {key} is not a number ({_clean(value, 40)!r}); read as 0")
    return 0


def _is_gpu_key(key: str) -> bool:
    return key.startswith(NVIDIA_PREFIX)


def _gpu_resources(resources: object, what: str) -> dict[str, int]:
    """The nvidia.com/* entries of a capacity / requests map, as ints (zero counts kept)."""
    return {
        key: _count(value, f"{what}[{key}]")
        for key, value in _d(resources).items()
        if isinstance(key, str) and _is_gpu_key(key)
    }


class _Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append(_clean(message, 300))
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        return self.items + ([f"... and {self.dropped} more warnings"] if self.dropped else [])


def _identity(obj: object, namespaced: bool = True) -> tuple[str, str]:
    if not isinstance(obj, dict):
        raise _Odd("not an object")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise _Odd("no metadata")
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or len(name) > 253:
        raise _Odd("no valid name")
    if namespaced and (not isinstance(namespace, str) or not namespace or len(namespace) > 63):
        raise _Odd("no valid namespace")
    return (namespace if namespaced else ""), name


def _parse_all(kind: str, items: Iterable, parse: Callable, warnings: _Warnings, namespaced: bool = True) -> list:
    """Parse each object; one that cannot be understood is skipped with a warning."""
    out = []
    for obj in items:
        try:
            namespace, name = _identity(obj, namespaced)
        except _Odd as exc:
            warnings.add(f"skipped a {kind} without a usable identity: {exc}")
            continue
        label = f"{namespace}/{name}" if namespace else name
        try:
            facts = parse(obj, namespace, name)
        except _Odd as exc:
            warnings.add(f"skipped {kind} {label}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a malformed object must never fail the snapshot
            warnings.add(f"skipped {kind} {label}: cannot be read ({type(exc).__name__})")
            continue
        if facts is not None:
            out.append(facts)
    return out


# --------------------------------------------------------------------------- nodes


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


def _node(obj: dict, _namespace: str, name: str, warnings: _Warnings) -> NodeFacts:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    labels = _str_dict(meta.get("labels"))
    capacity = _gpu_resources(status.get("capacity"), "capacity")
    allocatable = _gpu_resources(status.get("allocatable"), "allocatable")
    where = f"node {name}"
    gpu_count = _label_int(labels, "nvidia.com/gpu.count", where, warnings)
    if gpu_count is None:  # no GPU feature discovery: the device plugin's count is all we have
        gpu_count = capacity.get(GPU_RESOURCE, 0)
    mig_config = labels.get("nvidia.com/mig.config") or None
    if mig_config == "all-disabled":
        mig_config = None
    has_mig = mig_config is not None or any(k.startswith(MIG_RESOURCE_PREFIX) and v for k, v in capacity.items())
    strategy = labels.get("nvidia.com/mig.strategy")
    ready = any(_d(c).get("type") == "Ready" and _d(c).get("status") == "True" for c in _l(status.get("conditions")))
    taints = tuple(
        Taint(key=_s(t.get("key")), value=_s(t.get("value")), effect=_s(t.get("effect")))
        for t in _l(spec.get("taints"))
        if isinstance(t, dict) and _s(t.get("key"))
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
        gpu_product=labels.get("nvidia.com/gpu.product", ""),
        gpu_count=gpu_count,
        gpu_memory_mib=_label_int(labels, "nvidia.com/gpu.memory", where, warnings) or 0,
        mig_config=mig_config,
        mig_strategy=strategy if has_mig and strategy in ("single", "mixed") else None,
        capacity=capacity,
        allocatable=allocatable,
        ready=ready,
        unschedulable=spec.get("unschedulable") is True,
        taints=taints,
        created_at=_time(meta.get("creationTimestamp")),
    )


# --------------------------------------------------------------------------- pods


def _add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    out = dict(total)
    for key, value in more.items():
        out[key] = out.get(key, 0) + value
    return out


def _container_gpus(container: object, what: str) -> dict[str, int]:
    # Extended resources may be given as limits only: the request then defaults to the limit.
    resources = _d(_d(container).get("resources"))
    merged = {**_d(resources.get("limits")), **_d(resources.get("requests"))}
    return _gpu_resources(merged, what)


def pod_gpu_requests(pod_spec: object) -> dict[str, int]:
    """What the scheduler reserves for a pod: containers plus sidecars, or the largest init
    container (plus the sidecars started before it) when that is more. Zero counts dropped."""
    spec = _d(pod_spec)
    total: dict[str, int] = {}
    for c in _l(spec.get("containers")):
        total = _add(total, _container_gpus(c, "requests"))
    sidecars: dict[str, int] = {}
    peak: dict[str, int] = {}
    for c in _l(spec.get("initContainers")):
        gpus = _container_gpus(c, "init requests")
        if _d(c).get("restartPolicy") == "Always":
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
    statuses = [_d(s) for s in _l(status.get("containerStatuses"))]
    if phase == "Failed":
        terminated = [_s(_d(_d(s.get("state")).get("terminated")).get("reason")) for s in statuses]
        return _clean(_s(status.get("reason")) or next((r for r in terminated if r), "") or "failed", 100)
    if not _s(spec.get("nodeName")):
        return "waiting for a node"
    init_specs = map(_d, _l(spec.get("initContainers")))
    sidecars = {_s(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    for s in map(_d, _l(status.get("initContainerStatuses"))):
        state = _d(s.get("state"))
        waiting = _s(_d(state.get("waiting")).get("reason"))
        if waiting:
            return "pulling image" if waiting in _PULLING else _clean(waiting, 100)
        if "running" in state and _s(s.get("name")) not in sidecars:
            return "running init containers"
    for s in statuses:
        state = _d(s.get("state"))
        waiting = _s(_d(state.get("waiting")).get("reason"))
        if waiting:
            return "pulling image" if waiting in _PULLING else _clean(waiting, 100)
        terminated = _s(_d(state.get("terminated")).get("reason"))
        if terminated:
            return _clean(terminated, 100)
    if not statuses:
        return "pulling image"  # scheduled; the kubelet has not reported containers yet
    if any("running" in _d(s.get("state")) for s in statuses):
        return "loading model weights"
    return ""


def _restarts(status: dict) -> int:
    total = 0
    for s in [*_l(status.get("containerStatuses")), *_l(status.get("initContainerStatuses"))]:
        total += _int(_d(s).get("restartCount"), "restartCount", default=0)
    return total


@dataclass(frozen=True)
class _Owners:
    replicasets: dict[tuple[str, str], str]  # (namespace, ReplicaSet) -> Deployment name
    deployments: set[tuple[str, str]]  # the model Deployments the snapshot keeps


def _controller(meta: dict) -> tuple[str, str]:
    refs = [_d(r) for r in _l(meta.get("ownerReferences"))]
    ref = next((r for r in refs if r.get("controller") is True), refs[0] if refs else {})
    return _s(ref.get("kind")), _s(ref.get("name"))


def _pod(obj: dict, namespace: str, name: str, owners: _Owners) -> PodFacts | None:
    """A pod holding GPUs or belonging to a model Deployment; None for any other pod."""
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    gpu_requests = pod_gpu_requests(spec)
    kind, owner = _controller(meta)
    if kind == "ReplicaSet":
        deployment = owners.replicasets.get((namespace, owner))
        if deployment is None:
            # A ReplicaSet born after our list: its name is <deployment>-<pod-template-hash>.
            template_hash = _str_dict(meta.get("labels")).get("pod-template-hash", "")
            guess = owner.removesuffix(f"-{template_hash}") if template_hash else ""
            deployment = guess if guess != owner and (namespace, guess) in owners.deployments else None
        if deployment is not None:
            kind, owner = "Deployment", deployment
    if not gpu_requests and (kind != "Deployment" or (namespace, owner) not in owners.deployments):
        return None
    phase = _s(status.get("phase"))
    phase = phase if phase in _PHASES else "Unknown"
    ready = any(_d(c).get("type") == "Ready" and _d(c).get("status") == "True" for c in _l(status.get("conditions")))
    return PodFacts(
        namespace=namespace,
        name=name,
        node_name=_s(spec.get("nodeName")),
        phase=phase,
        ready=ready,
        started_at=_time(status.get("startTime")),
        gpu_requests=gpu_requests,
        restarts=_restarts(status),
        owner_kind=kind,
        owner_name=owner,
        waiting_reason=_waiting_reason(meta, spec, status, phase, ready),
    )


# --------------------------------------------------------------------------- vLLM command lines


@dataclass(frozen=True)
class ServingFacts:
    model: str = ""
    tensor_parallel: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    problems: tuple[str, ...] = ()


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_HUMAN_INT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG]?)$")


def _tokens(container: dict) -> list[str]:
    """command + args as argv, with $(VAR) expanded from literal env values and shell strings
    (`sh -c "vllm serve ..."`) split into words."""
    env = {_s(e.get("name")): _s(e.get("value")) for e in map(_d, _l(container.get("env"))) if "value" in e}
    words = [w for w in [*_l(container.get("command")), *_l(container.get("args"))] if isinstance(w, str)]
    out: list[str] = []
    for word in words:
        word = _K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), word)
        if any(ch.isspace() for ch in word.strip()):
            try:
                parts = shlex.split(word)
            except ValueError:
                parts = word.split()
            out += [_SHELL_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), p) for p in parts]
        else:
            out.append(word)
    return out


def _option(tokens: list[str], *names: str) -> str | None:
    """The last value given for an option (`--x v` or `--x=v`), as argparse reads it."""
    value = None
    for i, token in enumerate(tokens):
        for name in names:
            if token == name and i + 1 < len(tokens):
                value = tokens[i + 1]
            elif token.startswith(name + "="):
                value = token[len(name) + 1 :]
    return value


def _human_int(text: str) -> int | None:
    # vLLM reads --max-model-len like "32k" (x1000) and "32K" (x1024).
    match = _HUMAN_INT.match(text.strip())
    if not match:
        return None
    number, suffix = Decimal(match.group(1)), match.group(2)
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}[suffix]
    value = number * scale
    return int(value) if value == value.to_integral_value() and 0 < value <= 2**31 - 1 else None


def serving_facts(container: dict) -> ServingFacts:
    """What a vLLM container serves, from its command line (`vllm serve MODEL`, `--model X`,
    `--model=X`, `python -m vllm.entrypoints.openai.api_server --model X`, or the vllm-openai
    image's entrypoint with the model as first argument). Empty model when it is not vLLM."""
    tokens = _tokens(container)
    image = _s(container.get("image"))
    module = any(t.startswith("vllm.entrypoints") for t in tokens)
    serve_at = next(
        (i for i, t in enumerate(tokens[:-1]) if os.path.basename(t) == "vllm" and tokens[i + 1] == "serve"), None
    )
    image_is_vllm = "vllm" in image.rsplit("/", 1)[-1].split(":")[0] or "vllm-openai" in image
    if serve_at is None and not module and not image_is_vllm:
        return ServingFacts()
    model = ""
    if serve_at is not None and serve_at + 2 < len(tokens) and not tokens[serve_at + 2].startswith("-"):
        model = tokens[serve_at + 2]
    elif not container.get("command") and image_is_vllm and tokens and not tokens[0].startswith("-"):
        model = tokens[0]  # the vllm-openai image's entrypoint is the server itself
    model = model or _option(tokens, "--model") or ""
    problems = []
    tp = 1
    tp_text = _option(tokens, "--tensor-parallel-size", "-tp")
    if tp_text is not None:
        if tp_text.isdigit() and 1 <= int(tp_text) <= 1024:
            tp = int(tp_text)
        else:
            problems.append(f"--tensor-parallel-size {_clean(tp_text, 20)!r} is not a number; read as 1")
    max_len = None
    len_text = _option(tokens, "--max-model-len")
    if len_text is not None:
        max_len = _human_int(len_text)
        if max_len is None:
            problems.append(f"--max-model-len {_clean(len_text, 20)!r} is not a number")
    gmu = None
    gmu_text = _option(tokens, "--gpu-memory-utilization")
    if gmu_text is not None:
        try:
            gmu = float(gmu_text)
        except ValueError:
            gmu = None
        if gmu is None or not 0 < gmu <= 1:
            problems.append(f"--gpu-memory-utilization {_clean(gmu_text, 20)!r} is not a fraction in (0, 1]")
            gmu = None
    if len(model) > 300:
        problems.append("the model name is longer than 300 characters; cut")
        model = model[:300]
    return ServingFacts(_clean(model, 300) if model else "", tp, max_len, gmu, tuple(problems))


# --------------------------------------------------------------------------- deployments


def _serving_container(containers: list[dict]) -> dict:
    """The vLLM container, else the one holding GPUs, else the first."""
    for c in containers:
        if serving_facts(c).model or "vllm" in " ".join(_tokens(c)):
            return c
    for c in containers:
        if _container_gpus(c, "requests"):
            return c
    return containers[0] if containers else {}


def _rollout_condition(status: dict) -> str:
    conditions = {_s(c.get("type")): c for c in map(_d, _l(status.get("conditions")))}
    failure = conditions.get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        return _clean(f"ReplicaFailure: {_s(failure.get('reason'))}", 200)
    for kind in ("Progressing", "Available"):
        c = conditions.get(kind)
        if c:
            return _clean(f"{kind}: {_s(c.get('reason')) or _s(c.get('status'))}", 200)
    return ""


def _initial_delay(probe: object, what: str) -> int | None:
    if not isinstance(probe, dict):
        return None
    return _int(probe.get("initialDelaySeconds"), what, default=0)


def _as_written(value: object, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{1,9}%?", value):
        return value
    raise _Odd(f"rolling update bound is neither a count nor a percentage ({_clean(value, 20)!r})")


def _deployment(obj: dict, namespace: str, name: str, warnings: _Warnings) -> DeploymentFacts | None:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    template = _d(_d(spec.get("template")).get("spec"))
    containers = [c for c in _l(template.get("containers")) if isinstance(c, dict)]
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
    strategy = _d(spec.get("strategy"))
    if strategy.get("type") == "Recreate":  # every pod goes down first: say so in the same terms
        max_unavailable, max_surge = "100%", "0"
    else:
        rolling = _d(strategy.get("rollingUpdate"))
        max_unavailable = _as_written(rolling.get("maxUnavailable"), "25%")
        max_surge = _as_written(rolling.get("maxSurge"), "25%")
    return DeploymentFacts(
        namespace=namespace,
        name=name,
        model=facts.model,
        image=_clean(_s(serving.get("image")), 500),
        replicas_desired=_int(spec.get("replicas"), "spec.replicas", default=1),
        replicas_ready=_int(status.get("readyReplicas"), "status.readyReplicas", default=0),
        replicas_updated=_int(status.get("updatedReplicas"), "status.updatedReplicas", default=0),
        replicas_available=_int(status.get("availableReplicas"), "status.availableReplicas", default=0),
        gpu_resource=gpu_resource,
        gpu_per_replica=gpus.get(gpu_resource, 0),
        tensor_parallel=facts.tensor_parallel,
        max_model_len=facts.max_model_len,
        gpu_memory_utilization=facts.gpu_memory_utilization,
        rollout_condition=_rollout_condition(status),
        termination_grace_seconds=_int(
            template.get("terminationGracePeriodSeconds"), "terminationGracePeriodSeconds", default=30
        ),
        liveness_initial_delay_seconds=_initial_delay(serving.get("livenessProbe"), "livenessProbe delay"),
        readiness_initial_delay_seconds=_initial_delay(serving.get("readinessProbe"), "readinessProbe delay"),
        max_unavailable=max_unavailable,
        max_surge=max_surge,
        resource_version=_s(meta.get("resourceVersion")),
        labels=_str_dict(meta.get("labels")),
    )


# --------------------------------------------------------------------------- autoscalers


def _number_text(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return _clean(value, 40) if isinstance(value, str) else "?"


def _hpa_metric(metric: dict) -> str:
    kind = _s(metric.get("type"))
    body = _d(metric.get(kind[:1].lower() + kind[1:])) if kind else {}
    if kind in ("Resource", "ContainerResource"):
        name = _s(body.get("name")) or "?"
    else:
        name = _s(_d(body.get("metric")).get("name")) or "?"
    target = _d(body.get("target"))
    target_type = _s(target.get("type"))
    if target_type == "Utilization":
        text = f"{name} > {_number_text(target.get('averageUtilization'))}% utilization"
    elif target_type == "AverageValue":
        text = f"{name} > {_number_text(target.get('averageValue'))} per replica"
    else:
        text = f"{name} > {_number_text(target.get('value'))}"
    if kind == "ContainerResource" and _s(body.get("container")):
        text += f" (container {_s(body.get('container'))})"
    return text


def _hpa(obj: dict, namespace: str, name: str) -> AutoscalerFacts | None:
    meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
    ref = _d(spec.get("scaleTargetRef"))
    if ref.get("kind") != "Deployment":
        return None  # StatefulSets and custom targets are not ScaleDeck's
    target = _s(ref.get("name"))
    if not target:
        raise _Odd("scaleTargetRef has no name")
    metrics = [_hpa_metric(m) for m in map(_d, _l(spec.get("metrics")))]
    owner = next(
        (_s(r.get("name")) for r in map(_d, _l(meta.get("ownerReferences"))) if r.get("kind") == "ScaledObject"), ""
    )
    return AutoscalerFacts(
        kind="hpa",
        name=name,
        namespace=namespace,
        target_name=target,
        min_replicas=_int(spec.get("minReplicas"), "spec.minReplicas", default=1),
        max_replicas=_int(spec.get("maxReplicas"), "spec.maxReplicas", minimum=1),
        # An HPA without metrics scales on 80% CPU.
        metric=_clean("; ".join(metrics) or "cpu > 80% utilization", 300),
        resource_version=_s(meta.get("resourceVersion")),
        owned_by_scaledobject=owner,
    )


def _trigger(trigger: dict) -> str:
    kind = _clean(_s(trigger.get("type")) or "?", 40)
    meta = _str_dict(trigger.get("metadata"))
    if kind in ("cpu", "memory"):
        return f"{kind}: {meta.get('value', '?')}{'%' if trigger.get('metricType') == 'Utilization' else ''}"
    if kind == "cron":
        window = f"{meta.get('start', '?')} to {meta.get('end', '?')}"
        return f"cron: {window} -> {meta.get('desiredReplicas', '?')} replicas"
    subject = meta.get("query") or meta.get("metricName") or meta.get("queueName") or meta.get("topic") or ""
    threshold = meta.get("threshold") or meta.get("targetValue") or meta.get("value") or meta.get("queueLength")
    text = f"{kind}: {' '.join(subject.split())}" if subject else kind
    return f"{text} > {threshold}" if threshold else text


def _scaledobject(obj: dict, namespace: str, name: str, warnings: _Warnings) -> AutoscalerFacts | None:
    meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
    ref = _d(spec.get("scaleTargetRef"))
    if (_s(ref.get("kind")) or "Deployment") != "Deployment":
        return None
    target = _s(ref.get("name"))
    if not target:
        raise _Odd("scaleTargetRef has no name")
    annotations = _str_dict(meta.get("annotations"))
    paused_replicas = None
    if PAUSED_REPLICAS in annotations:
        text = annotations[PAUSED_REPLICAS].strip()
        if text.isdigit() and int(text) <= MAX_COUNT:
            paused_replicas = int(text)
        else:
            warnings.add(f"scaledobject {namespace}/{name}: {PAUSED_REPLICAS} is not a count ({_clean(text, 20)!r})")
    return AutoscalerFacts(
        kind="keda",
        name=name,
        namespace=namespace,
        target_name=target,
        min_replicas=_int(spec.get("minReplicaCount"), "spec.minReplicaCount", default=0),
        max_replicas=_int(spec.get("maxReplicaCount"), "spec.maxReplicaCount", default=100),
        metric=_clean("; ".join(_trigger(t) for t in map(_d, _l(spec.get("triggers")))), 300),
        paused_replicas=paused_replicas,
        paused=annotations.get(PAUSED, "").strip().lower() == "true",
        resource_version=_s(meta.get("resourceVersion")),
    )


# --------------------------------------------------------------------------- quotas, node pools


def is_gpu_quota_key(key: str) -> bool:
    return key in ("requests.nvidia.com/gpu", "nvidia.com/gpu") or key.startswith("requests.nvidia.com/mig-")


def _quota_entries(values: object, what: str) -> dict[str, int]:
    return {k: _count(v, f"{what}[{k}]") for k, v in _d(values).items() if isinstance(k, str) and is_gpu_quota_key(k)}


def _quota(obj: dict, namespace: str, name: str) -> QuotaFacts:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    hard = status.get("hard") if isinstance(status.get("hard"), dict) else spec.get("hard")
    return QuotaFacts(
        namespace=namespace,
        name=name,
        hard=_quota_entries(hard, "hard"),
        used=_quota_entries(status.get("used"), "used"),
        resource_version=_s(meta.get("resourceVersion")),
    )


_CAPACITY_TYPES = ("on-demand", "spot")


def _nodepool(obj: dict, _namespace: str, name: str) -> NodePoolFacts:
    spec = _d(obj.get("spec"))
    requirements = [_d(r) for r in _l(_d(_d(spec.get("template")).get("spec")).get("requirements"))]

    def values(key: str) -> tuple[str | None, tuple[str, ...]]:
        for r in requirements:
            if r.get("key") == key:
                return _s(r.get("operator")), tuple(v for v in _l(r.get("values")) if isinstance(v, str))
        return None, ()

    operator, types = values("node.kubernetes.io/instance-type")
    instance_types = types if operator == "In" else ()
    operator, given = values("karpenter.sh/capacity-type")
    if operator == "In":
        capacity_types = given
    elif operator == "NotIn":
        capacity_types = tuple(t for t in _CAPACITY_TYPES if t not in given)
    elif operator == "Exists":
        capacity_types = _CAPACITY_TYPES
    else:
        capacity_types = ("on-demand",)  # Karpenter's default
    limit = _d(spec.get("limits")).get(GPU_RESOURCE)
    return NodePoolFacts(
        name=name,
        instance_types=instance_types,
        capacity_types=capacity_types,
        gpu_limit=None if limit is None else _count(limit, f"limits[{GPU_RESOURCE}]"),
        consolidation_policy=_clean(_s(_d(spec.get("disruption")).get("consolidationPolicy")), 50),
    )


# --------------------------------------------------------------------------- the backend


@dataclass(frozen=True)
class _Action:
    verb: str  # list | get | patch
    resource: str  # pods, deployments/scale, scaledobjects.keda.sh, ...
    namespace: str | None = None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    cluster_scoped: bool = False

    def __str__(self) -> str:
        what = f"{self.verb} {self.resource}" + (f" {self.name}" if self.name else "")
        if self.cluster_scoped:
            return what
        return what + (f" in namespace {self.namespace}" if self.namespace else " in all namespaces")


_SERVICEACCOUNT = re.compile(r'User "system:serviceaccount:([^":]+):([^"]+)"')
_USER = re.compile(r'User "([^"]+)"')
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")


class KubernetesClusterBackend:
    """A Kubernetes cluster through the official client. Implements `ClusterBackend` (snapshot)
    and `ClusterWriter` (read_object, scale_deployment, patch_*).

    Nothing is loaded or contacted until the first call, so building one never fails; every
    failure later is a `BackendError` with a one-line reason (a `ConflictError` on 409).
    `namespaces` is the allow-list: empty reads every namespace and allows no writes.
    """

    page_size = 500  # list chunk size (kubectl's)
    list_concurrency = 4  # lists fetched side by side during a snapshot

    def __init__(
        self,
        *,
        kubeconfig_path: str = "",
        context: str = "",
        in_cluster: bool = False,
        timeout_seconds: float = 10.0,
        namespaces: tuple[str, ...] = (),
    ):
        self.kubeconfig_path = kubeconfig_path
        self.context = context
        self.in_cluster = in_cluster
        self.timeout_seconds = float(timeout_seconds) if timeout_seconds and timeout_seconds > 0 else 10.0
        self.namespaces = tuple(namespaces)
        self._client: k8s.ApiClient | None = None
        self._client_lock = threading.Lock()
        self._warnings: list[str] = []

    # ------------------------------------------------------------------ connection

    def _api(self) -> k8s.ApiClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> k8s.ApiClient:
        configuration = k8s.Configuration()
        # Retry a refused/failed connection once (nothing was sent); never re-send after a read
        # timeout, so a stalled API server fails in timeout_seconds, not a multiple of it.
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        if self.in_cluster:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except Exception:  # noqa: BLE001 - the loader's messages name token paths; say it plainly
                raise BackendError(
                    "in-cluster config is unavailable: not running in a pod with a ServiceAccount token"
                ) from None
            return k8s.ApiClient(configuration)
        path = self._kubeconfig_file()
        self._check_kubeconfig(path)
        try:
            api = k8s_config.new_client_from_config(
                config_file=path,
                context=self.context or None,
                persist_config=False,  # never write tokens back into someone's kubeconfig
                client_configuration=configuration,
            )
        except Exception as exc:  # noqa: BLE001 - its messages can carry commands and paths; never echo them
            hint = ""
            text = str(exc)
            if "exec" in text or "cmd-path" in text:
                hint = " (its credential plugin failed)"
            elif "File does not exist" in text:
                hint = " (a certificate or key file it names does not exist)"
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig{hint}") from None
        server = urlsplit(api.configuration.host or "")
        if server.scheme not in ("http", "https") or not server.hostname:
            api.close()
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (its cluster has no server URL)")
        return api

    def _kubeconfig_file(self) -> str:
        path = self.kubeconfig_path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        return os.path.expanduser(path)

    def _check_kubeconfig(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(5_000_000)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not text"
            raise BackendError(f"kubeconfig {path}: cannot be read ({reason})") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError:
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (not YAML)") from None
        if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (no contexts)")
        names = {_s(_d(c).get("name")) for c in config["contexts"]}
        context = self.context or _s(config.get("current-context"))
        if not context:
            raise BackendError(f"kubeconfig {path}: has no current-context; name a context")
        if context not in names:
            raise BackendError(f"kubeconfig {path}: has no context '{_clean(context, 100)}'")

    @property
    def host(self) -> str:
        """The API server, as scheme://host:port (no credentials, no path)."""
        raw = self._client.configuration.host if self._client is not None else ""
        try:
            parts = urlsplit(raw)
            return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        except ValueError:
            return "the configured server"

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ calls and errors

    def _call(self, action: _Action, method: Callable, *args, **kwargs) -> dict:
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        except OpenApiException:
            raise BackendError(f"cannot {action}: the request is not valid") from None
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise BackendError(
                f"the Kubernetes API at {self.host} answered {action} with something that is not JSON", transient=True
            )
        return doc

    def _transport_error(self, exc: Exception) -> BackendError:
        reason = getattr(exc, "reason", None) or exc
        text = str(reason).lower()
        transient = True
        # Order matters: in urllib3 2, NameResolutionError < NewConnectionError < ConnectTimeoutError.
        if isinstance(reason, urllib3.exceptions.NameResolutionError) or "name or service not known" in text:
            why = "DNS lookup failed"
        elif isinstance(reason, urllib3.exceptions.NewConnectionError) or "refused" in text:
            why = "connection refused" if "refused" in text else "cannot connect"
        elif isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            why = f"connection timed out after {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.SSLError):
            why, transient = "TLS failed (is the server certificate trusted?)", False
        elif isinstance(reason, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) or "timed out" in text:
            why = f"no answer within {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.ProxyError):
            why = "the proxy failed"
        else:
            why = "the connection broke"
        return BackendError(f"cannot reach the Kubernetes API at {self.host}: {why}", transient=transient)

    def _redact(self, text: str) -> str:
        """Take credentials out of server-supplied text (a proxy or webhook may echo them)."""
        configuration = self._client.configuration if self._client is not None else None
        secrets = []
        if configuration is not None:
            for value in [*configuration.api_key.values(), configuration.password]:
                if isinstance(value, str):
                    secrets.append(value.split(" ", 1)[-1] if value.lower().startswith("bearer ") else value)
        for secret in secrets:
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return _BEARER.sub("Bearer ***", text)

    def _api_error(self, exc: ApiException, action: _Action) -> BackendError:
        error = self._describe_api_error(exc, action)
        error.args = (self._redact(str(error)),)
        return error

    def _describe_api_error(self, exc: ApiException, action: _Action) -> BackendError:
        status = exc.status or 0
        try:
            message = _clean(_s(_d(json.loads(exc.body or "")).get("message")), 200)
        except (ValueError, TypeError):
            message = ""
        if status == 401:
            return BackendError(f"credentials refused (401) by the Kubernetes API at {self.host}", status=401)
        if status == 403:
            account = _SERVICEACCOUNT.search(message)
            user = _USER.search(message)
            if account:
                who = f"the ServiceAccount {account.group(1)}/{account.group(2)}"
            elif user:
                who = f'user "{_clean(user.group(1), 80)}"'
            else:
                who = "the ServiceAccount" if self.in_cluster else "these credentials"
            hint = ""
            if action.namespace is None and not action.cluster_scoped:
                hint = "; list the namespaces it may read in the cluster's settings"
            return BackendError(f"forbidden: {who} may not {action} (403){hint}", status=403)
        if status == 409:
            return ConflictError(f"{action.resource} {action.namespace}/{action.name} changed since it was read (409)")
        if status == 404:
            return BackendError(f"not found: {action} (404)", status=404)
        if status == 429 or status >= 500:
            return BackendError(
                f"the Kubernetes API at {self.host} failed to {action}: {status} {_clean(exc.reason or '', 60)}",
                transient=True,
                status=status,
            )
        detail = f": {message}" if message else ""
        return BackendError(f"the Kubernetes API refused to {action} ({status}){detail}", status=status)

    def _list(self, action: _Action, method: Callable, *args, **kwargs) -> list:
        """Every item of a list, page by page. An expired continue token restarts the list once."""
        for _attempt in range(2):
            items: list = []
            token = None
            try:
                for _page in range(100_000):
                    doc = self._call(action, method, *args, limit=self.page_size, _continue=token, **kwargs)
                    page = doc.get("items") or []
                    if not isinstance(page, list):
                        raise BackendError(f"the Kubernetes API at {self.host} answered {action} without a list")
                    items += page
                    token = _d(doc.get("metadata")).get("continue")
                    if not token or not isinstance(token, str):
                        return items
                raise BackendError(f"cannot {action}: the API server kept sending more pages")
            except BackendError as exc:
                if exc.status == 410 and token:
                    continue
                raise
        raise BackendError(f"cannot {action}: the list kept changing under us (410)", transient=True)

    def _list_namespaced(self, resource: str, every: Callable, one: Callable, *args, **kwargs) -> list:
        if not self.namespaces:
            return self._list(_Action("list", resource), every, *args, **kwargs)
        items: list = []
        for namespace in self.namespaces:
            items += self._list(_Action("list", resource, namespace), one, *args, namespace=namespace, **kwargs)
        return items

    def _list_custom(self, group: str, version: str, plural: str, *, namespaced: bool) -> list | None:
        """A custom resource list; None when its CRD is not installed (404)."""
        custom = k8s.CustomObjectsApi(self._api())
        resource = f"{plural}.{group}"

        def every(**kw):
            return custom.list_cluster_custom_object(group, version, plural, **kw)

        def one(namespace, **kw):
            return custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)

        try:
            if namespaced:
                return self._list_namespaced(resource, every, one)
            return self._list(_Action("list", resource, cluster_scoped=True), every)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> ClusterSnapshot:
        """List everything the sync needs (list calls only). Raises BackendError."""
        taken_at = datetime.now(UTC)
        api = self._api()
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        autoscaling = k8s.AutoscalingV2Api(api)

        def workloads() -> tuple[list, list, list]:
            # Pods before ReplicaSets before Deployments: every listed pod's owners exist by then.
            pods = self._list_namespaced("pods", core.list_pod_for_all_namespaces, core.list_namespaced_pod)
            replicasets = self._list_namespaced(
                "replicasets",
                apps.list_replica_set_for_all_namespaces,
                apps.list_namespaced_replica_set,
                _headers={"Accept": METADATA_ONLY},
            )
            deployments = self._list_namespaced(
                "deployments", apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment
            )
            return pods, replicasets, deployments

        # The lists are independent, and on a big cluster the API server's time dominates: fetch
        # them side by side. The first failure (in this order) is the one reported.
        jobs = {
            "workloads": workloads,
            "nodes": lambda: self._list(_Action("list", "nodes", cluster_scoped=True), core.list_node),
            "hpas": lambda: self._list_namespaced(
                "horizontalpodautoscalers",
                autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                autoscaling.list_namespaced_horizontal_pod_autoscaler,
            ),
            "scaledobjects": lambda: self._list_custom(*KEDA, namespaced=True),
            "quotas": lambda: self._list_namespaced(
                "resourcequotas", core.list_resource_quota_for_all_namespaces, core.list_namespaced_resource_quota
            ),
            "nodepools": lambda: self._list_custom(*KARPENTER, namespaced=False),
        }
        raw = self._run_all(jobs)
        raw_pods, raw_replicasets, raw_deployments = raw["workloads"]

        warnings = _Warnings()
        nodes = _parse_all("node", raw["nodes"], lambda o, ns, n: _node(o, ns, n, warnings), warnings, False)
        deployments = _parse_all(
            "deployment", raw_deployments, lambda o, ns, n: _deployment(o, ns, n, warnings), warnings
        )
        owners = _Owners(replicasets={}, deployments={(d.namespace, d.name) for d in deployments})
        for rs in raw_replicasets:
            try:
                namespace, name = _identity(rs)
            except _Odd:
                continue  # a ReplicaSet we cannot name only costs its pods their Deployment link
            kind, owner = _controller(_d(rs.get("metadata")))
            if kind == "Deployment" and owner:
                owners.replicasets[(namespace, name)] = owner
        pods = _parse_all("pod", raw_pods, lambda o, ns, n: _pod(o, ns, n, owners), warnings)
        autoscalers = _parse_all("hpa", raw["hpas"], _hpa, warnings)
        autoscalers += _parse_all(
            "scaledobject", raw["scaledobjects"] or [], lambda o, ns, n: _scaledobject(o, ns, n, warnings), warnings
        )
        quotas = _parse_all("resourcequota", raw["quotas"], _quota, warnings)
        node_pools = _parse_all("nodepool", raw["nodepools"] or [], _nodepool, warnings, False)

        self._warnings = warnings.result()
        return ClusterSnapshot(
            taken_at=taken_at,
            nodes=tuple(nodes),
            pods=tuple(pods),
            deployments=tuple(deployments),
            autoscalers=tuple(autoscalers),
            quotas=tuple(quotas),
            node_pools=tuple(node_pools),
            keda_installed=raw["scaledobjects"] is not None,
        )

    def _run_all(self, jobs: dict[str, Callable]) -> dict:
        pool = ThreadPoolExecutor(max_workers=self.list_concurrency, thread_name_prefix="k8s-list")
        try:
            futures = {key: pool.submit(job) for key, job in jobs.items()}
            return {key: future.result() for key, future in futures.items()}
        finally:
            # On failure, do not wait for lists nobody will read (each is bounded by the timeout).
            pool.shutdown(wait=False, cancel_futures=True)

    def last_warnings(self) -> list[str]:
        """What the last snapshot skipped or could not read, one line each (untrusted text, cut)."""
        return list(self._warnings)

    # ------------------------------------------------------------------ writing

    def _check_target(self, namespace: str, name: str, *, write: bool) -> None:
        if not isinstance(namespace, str) or not _NAME.match(namespace) or len(namespace) > 63:
            raise BackendError(f"{_clean(namespace, 80)!r} is not a namespace name")
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
            raise BackendError(f"{_clean(name, 80)!r} is not an object name")
        if write and namespace not in self.namespaces:
            hint = "" if self.namespaces else " (the allow-list is empty: this cluster is read-only)"
            raise BackendError(f"namespace {namespace} is not in this cluster's allow-list{hint}")
        if not write and self.namespaces and namespace not in self.namespaces:
            raise BackendError(f"namespace {namespace} is not in this cluster's allow-list")

    @staticmethod
    def _check_count(value: object, what: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COUNT:
            raise BackendError(f"{what} must be a whole number from {minimum} to {MAX_COUNT}, not {_clean(value, 20)}")
        return value

    @staticmethod
    def _check_rv(resource_version: object) -> str:
        if not isinstance(resource_version, str) or not resource_version or len(resource_version) > 64:
            raise BackendError("a write needs the resourceVersion its values were read at")
        return resource_version

    def _patch(self, action: _Action, method: Callable, *args, body: dict) -> str:
        doc = self._call(action, method, *args, body, _content_type=MERGE_PATCH)
        return _s(_d(doc.get("metadata")).get("resourceVersion"))

    def scale_deployment(self, namespace: str, name: str, replicas: int, *, resource_version: str) -> str:
        """Set a Deployment's replicas through its /scale subresource. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = {
            "metadata": {"resourceVersion": self._check_rv(resource_version)},
            "spec": {"replicas": self._check_count(replicas, "replicas")},
        }
        apps = k8s.AppsV1Api(self._api())
        action = _Action("patch", "deployments/scale", namespace, name)
        return self._patch(action, apps.patch_namespaced_deployment_scale, name, namespace, body=body)

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
        """Change a ScaledObject's floor/ceiling and its paused-replicas pin (None removes the pin).
        min/max left UNCHANGED (or None) are not touched. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        spec = {}
        if min_replicas is not UNCHANGED and min_replicas is not None:
            spec["minReplicaCount"] = self._check_count(min_replicas, "minReplicaCount")
        if max_replicas is not UNCHANGED and max_replicas is not None:
            spec["maxReplicaCount"] = self._check_count(max_replicas, "maxReplicaCount", 1)
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", MAX_COUNT):
            raise BackendError("minReplicaCount cannot be above maxReplicaCount")
        body: dict = {"metadata": {"resourceVersion": self._check_rv(resource_version)}}
        if paused_replicas is not UNCHANGED:
            pin = None if paused_replicas is None else str(self._check_count(paused_replicas, "paused replicas"))
            body["metadata"]["annotations"] = {PAUSED_REPLICAS: pin}  # null removes it (merge patch)
        if spec:
            body["spec"] = spec
        if len(body) == 1 and "annotations" not in body["metadata"]:
            raise BackendError(f"nothing to change on scaledobject {namespace}/{name}")
        custom = k8s.CustomObjectsApi(self._api())
        action = _Action("patch", "scaledobjects.keda.sh", namespace, name)
        group, version, plural = KEDA
        return self._patch(
            action, custom.patch_namespaced_custom_object, group, version, namespace, plural, name, body=body
        )

    def patch_hpa(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
    ) -> str:
        """Change an HPA's minReplicas / maxReplicas. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        spec = {}
        if min_replicas is not UNCHANGED and min_replicas is not None:
            spec["minReplicas"] = self._check_count(min_replicas, "minReplicas")
        if max_replicas is not UNCHANGED and max_replicas is not None:
            spec["maxReplicas"] = self._check_count(max_replicas, "maxReplicas", 1)
        if not spec:
            raise BackendError(f"nothing to change on hpa {namespace}/{name}")
        if spec.get("minReplicas", 0) > spec.get("maxReplicas", MAX_COUNT):
            raise BackendError("minReplicas cannot be above maxReplicas")
        body = {"metadata": {"resourceVersion": self._check_rv(resource_version)}, "spec": spec}
        autoscaling = k8s.AutoscalingV2Api(self._api())
        action = _Action("patch", "horizontalpodautoscalers", namespace, name)
        return self._patch(action, autoscaling.patch_namespaced_horizontal_pod_autoscaler, name, namespace, body=body)

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str:
        """Set GPU entries of a ResourceQuota's spec.hard (other entries are kept). Returns the new
        resourceVersion."""
        self._check_target(namespace, name, write=True)
        if not isinstance(hard, dict) or not hard:
            raise BackendError("a quota change needs at least one entry")
        for key in hard:
            if not isinstance(key, str) or not is_gpu_quota_key(key):
                raise BackendError(
                    f"{_clean(key, 80)!r} is not a GPU quota entry (requests.nvidia.com/gpu, "
                    "requests.nvidia.com/mig-<profile>)"
                )
        entries = {key: str(self._check_count(value, key)) for key, value in hard.items()}
        body = {"metadata": {"resourceVersion": self._check_rv(resource_version)}, "spec": {"hard": entries}}
        core = k8s.CoreV1Api(self._api())
        action = _Action("patch", "resourcequotas", namespace, name)
        return self._patch(action, core.patch_namespaced_resource_quota, name, namespace, body=body)

    # ------------------------------------------------------------------ re-reads

    def _get(self, action: _Action, method: Callable, *args) -> tuple[dict, str]:
        doc = self._call(action, method, *args)
        return doc, _s(_d(doc.get("metadata")).get("resourceVersion"))

    def _value(self, what: str, parse: Callable, *args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except _Odd as exc:
            raise BackendError(f"{what}: {exc}") from None

    def get_deployment_scale(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"replicas"}, resourceVersion) of a Deployment, from its /scale subresource."""
        self._check_target(namespace, name, write=False)
        apps = k8s.AppsV1Api(self._api())
        doc, rv = self._get(
            _Action("get", "deployments/scale", namespace, name), apps.read_namespaced_deployment_scale, name, namespace
        )
        spec = _d(doc.get("spec"))
        replicas = self._value(f"deployment {namespace}/{name}", _int, spec.get("replicas"), "spec.replicas", default=0)
        return {"replicas": replicas}, rv

    def get_scaledobject(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas", "paused_replicas"}, resourceVersion) of a ScaledObject."""
        self._check_target(namespace, name, write=False)
        custom = k8s.CustomObjectsApi(self._api())
        doc, rv = self._get(
            _Action("get", "scaledobjects.keda.sh", namespace, name),
            custom.get_namespaced_custom_object,
            *KEDA[:2],
            namespace,
            KEDA[2],
            name,
        )
        warnings = _Warnings()
        facts = self._value(f"scaledobject {namespace}/{name}", _scaledobject, doc, namespace, name, warnings)
        if facts is None:
            raise BackendError(f"scaledobject {namespace}/{name} does not target a Deployment")
        if warnings.items:
            raise BackendError(warnings.items[0])
        return {
            "min_replicas": facts.min_replicas,
            "max_replicas": facts.max_replicas,
            "paused_replicas": facts.paused_replicas,
        }, rv

    def get_hpa(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas"}, resourceVersion) of an HPA."""
        self._check_target(namespace, name, write=False)
        autoscaling = k8s.AutoscalingV2Api(self._api())
        doc, rv = self._get(
            _Action("get", "horizontalpodautoscalers", namespace, name),
            autoscaling.read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )
        spec = _d(doc.get("spec"))
        what = f"hpa {namespace}/{name}"
        return {
            "min_replicas": self._value(what, _int, spec.get("minReplicas"), "spec.minReplicas", default=1),
            "max_replicas": self._value(what, _int, spec.get("maxReplicas"), "spec.maxReplicas", minimum=1),
        }, rv

    def get_quota(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"hard", "used"}, resourceVersion) of a ResourceQuota, GPU entries only. `hard` is
        spec.hard (what a write sets; status.hard lags behind it)."""
        self._check_target(namespace, name, write=False)
        core = k8s.CoreV1Api(self._api())
        doc, rv = self._get(
            _Action("get", "resourcequotas", namespace, name), core.read_namespaced_resource_quota, name, namespace
        )
        what = f"resourcequota {namespace}/{name}"
        hard = self._value(what, _quota_entries, _d(doc.get("spec")).get("hard"), "hard")
        used = self._value(what, _quota_entries, _d(doc.get("status")).get("used"), "used")
        return {"hard": hard, "used": used}, rv

    def read_object(self, kind: str, namespace: str, name: str) -> ObjectState:
        """Current values and resourceVersion of "deployment" | "scaledobject" | "hpa" | "quota"."""
        readers = {
            "deployment": self.get_deployment_scale,
            "scaledobject": self.get_scaledobject,
            "hpa": self.get_hpa,
            "quota": self.get_quota,
        }
        if kind not in readers:
            raise BackendError(f"cannot read objects of kind {_clean(kind, 40)!r}")
        values, rv = readers[kind](namespace, name)
        return ObjectState(kind=kind, namespace=namespace, name=name, values=values, resource_version=rv)
