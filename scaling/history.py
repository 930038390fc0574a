"""A Kubernetes deployment's replay model and traffic from its real history.

What-if and the advisor replay one deployment (`simulator.replay`). On a simulated cluster its
inputs come from the simulated world; on a Kubernetes cluster they come from what was measured:

* traffic (`Load`): arrivals per second from vLLM's finished-request counters (every request
  that arrived finishes, served or aborted), prompt and generation tokens per request, per
  minute, from Prometheus range queries at 1-minute resolution over up to 7 days (one batch of
  six queries, `PrometheusMetricsBackend.deployment_history`);
* capacity: fitted from observed throughput against queue and TTFT, else a table by GPU model
  and model size (`simulator.capacity_fit`, which documents the fit) -- the notes say which;
* cold start: measured pod starts (created -> Ready, p95) and the pool's node starts
  (`fleet.cold_start`), else a stated default from the model size;
* node pool: the synced nodes the deployment's pods run on (instance type, GPUs, MIG slices,
  free GPUs, the NodePool's GPU limit) and the price from costing's catalog.

Nothing is written. Every figure's source goes into `DeploymentModel.notes`, shown with the result.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from core.errors import ApplicationError
from fleet.models import Gpu, GpuNode, ModelDeployment, Pod
from simulator.capacity_fit import Minute, fit_capacity, table_capacity, token_means
from simulator.replay import DeploymentModel, Load

STEP_SECONDS = 60
MAX_HOURS = 7 * 24.0
DEFAULT_NODE_START_SECONDS = 300  # a cloud GPU node: launch, boot, GPU driver and device plugin
DEFAULT_POD_START_BASE_SECONDS = 60  # image pull of a vLLM image on a warm registry mirror
DEFAULT_LOAD_SECONDS_PER_BILLION = 3.0  # weight load, ~2 GB/B at ~0.7 GB/s
DEFAULT_PRICE_PER_GPU_HOUR_USD = 2.0
DEFAULT_MAX_NEW_NODES = 4
MIG_SLICES = 7


@dataclass(frozen=True)
class History:
    """The replay's inputs for one deployment, and where each came from."""

    model: DeploymentModel
    load: Load  # the whole measured range, from its first minute
    minutes_measured: int


def _minutes(points: dict[int, dict[str, float | None]]) -> dict[int, Minute]:
    return {
        t: Minute(
            p.get("requests_per_second"),
            p.get("prompt_tokens_per_second"),
            p.get("generation_tokens_per_second"),
            p.get("queue_depth"),
            p.get("ttft_p95_seconds"),
            p.get("replicas"),
        )
        for t, p in points.items()
    }


def load_from_history(
    points: dict[int, dict[str, float | None]], *, start: int, seconds: int, step_seconds: int
) -> Load:
    """Per-second arrivals (each step's rate held through the step) and per-minute token means.

    Steps with no pod reporting count as no arrivals (the deployment served nothing).
    """
    arrivals = array("d", bytes(8 * seconds))
    minutes = math.ceil(seconds / 60)
    prompts, outputs = array("d", bytes(8 * minutes)), array("d", bytes(8 * minutes))
    for t, p in points.items():
        first = t - start
        if first >= seconds or first + step_seconds <= 0:
            continue
        rate = p.get("arrivals_per_second") or 0.0
        for i in range(max(0, first), min(seconds, first + step_seconds)):
            arrivals[i] = rate
        served = p.get("requests_per_second") or 0.0
        if served > 0:
            for m in range(max(0, first) // 60, min(minutes, math.ceil((first + step_seconds) / 60))):
                prompts[m] = (p.get("prompt_tokens_per_second") or 0.0) / served
                outputs[m] = (p.get("generation_tokens_per_second") or 0.0) / served
    return Load(start, arrivals, prompts, outputs)


def _gpus_per_replica(deployment: ModelDeployment) -> float:
    count = max(1, deployment.gpu_per_replica)
    if "mig-" in deployment.gpu_resource:  # nvidia.com/mig-1g.10gb: one slice of seven
        slices = int(deployment.gpu_resource.split("mig-", 1)[1].split("g", 1)[0] or 1)
        return count * slices / MIG_SLICES
    return float(count)


def _pool(deployment: ModelDeployment, now: datetime) -> tuple[dict, list[str]]:
    """The node pool the deployment's pods run on, from the synced nodes: three queries."""
    pods = Pod.objects.alive().filter(deployment=deployment, node__isnull=False)
    used = Counter(pods.values_list("node_id", flat=True))
    nodes = list(GpuNode.objects.alive().filter(id__in=used).select_related("node_pool")) if used else []
    if not nodes:
        return {}, [
            "node pool: no synced node runs the deployment's pods; 1 GPU per node, "
            f"${DEFAULT_PRICE_PER_GPU_HOUR_USD:.2f} per GPU-hour assumed"
        ]
    node = max(nodes, key=lambda n: used[n.id])  # the pool most of its pods run on
    pool = node.node_pool
    same = GpuNode.objects.alive().filter(cluster=deployment.cluster_id)
    same = same.filter(node_pool=pool) if pool else same.filter(id=node.id)
    pool_nodes = list(same.values_list("id", "gpu_count", "ready"))
    free = Gpu.objects.filter(
        node_id__in=[i for i, _, ready in pool_nodes if ready], pod__isnull=True, mig_enabled=False
    ).count()
    from costing.selectors import price_book

    quote = price_book([node.instance_type]).quote(
        instance_type=node.instance_type,
        region=node.region,
        capacity_type=node.capacity_type,
        at=now,
        cluster_id=deployment.cluster_id,
    )
    notes = []
    if quote is not None:
        price = float(quote.gpu_rate)
        notes.append(f"price from the catalog: {node.instance_type} {quote.priced_as}, ${price:.2f} per GPU-hour")
    else:
        price = DEFAULT_PRICE_PER_GPU_HOUR_USD
        notes.append(f"no catalog price for {node.instance_type or 'the node'}: ${price:.2f} per GPU-hour assumed")
    gpus = max(1, node.gpu_count)
    max_new = DEFAULT_MAX_NEW_NODES
    if pool is not None and pool.gpu_limit is not None:
        max_new = max(0, (pool.gpu_limit - sum(c for _, c, _ in pool_nodes)) // gpus)
    name = pool.name if pool else node.name
    notes.append(
        f"node pool {name}: {node.instance_type or 'unknown instance type'}, {gpus} x "
        f"{node.gpu_product or 'GPU'}{', MIG ' + node.mig_config if node.mig_config else ''}, "
        f"{len(pool_nodes)} nodes, room for {max_new} more"
    )
    return {
        "gpu_product": node.gpu_product,
        "gpus_per_node": float(gpus),
        "price": price,
        "free_gpus": free,
        "max_new_nodes": max_new,
        "pool": pool.name if pool else "",
        "mig": bool(node.mig_config),
    }, notes


@dataclass(frozen=True)
class MeasuredStarts:
    """Cold starts ScaleDeck measured from the deployment's and its pool's events (`fleet.cold_start`),
    seconds, None where nothing was measured, each with the words saying how."""

    pod_seconds: int | None
    pod_note: str
    node_seconds: int | None
    node_note: str


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def measured_starts(deployment: ModelDeployment, pool_name: str, now: datetime) -> MeasuredStarts:
    """A pod's start on a node with room is the image pull plus the weight load (p95 of each, over
    the last 7 days): the replay adds the wait for a node itself, so the scheduling wait inside
    created -> Ready is left out when the parts were measured. Two queries."""
    from fleet.cold_start import deployment_cold_starts, node_starts

    pod = deployment_cold_starts([deployment], now=now)[deployment.id]
    if pod.pull_p95_seconds is not None and pod.load_p95_seconds is not None:
        pod_seconds = round(pod.pull_p95_seconds + pod.load_p95_seconds)
        pod_note = (
            f"pod start {pod_seconds} s measured (image pull p95 {pod.pull_p95_seconds:g} s + weight load "
            f"p95 {pod.load_p95_seconds:g} s, {_count(pod.samples, 'pod')} in 7 days)"
        )
    elif pod.p95_seconds is not None:
        pod_seconds = round(pod.p95_seconds)
        pod_note = f"pod start {pod_seconds} s measured (created to Ready p95, {_count(pod.samples, 'pod')} in 7 days)"
    else:
        pod_seconds, pod_note = None, ""
    node = node_starts(cluster_ids=[deployment.cluster_id], now=now).get((deployment.cluster_id, pool_name))
    if node is not None and node.p95_seconds is not None:
        node_seconds = round(node.p95_seconds)
        node_note = f"node start {node_seconds} s measured (p95 of {_count(node.samples, 'node')} in 7 days)"
    else:
        node_seconds, node_note = None, ""
    return MeasuredStarts(pod_seconds, pod_note, node_seconds, node_note)


def _cold_start(deployment: ModelDeployment, pool_name: str, now: datetime) -> tuple[int, int, list[str]]:
    from simulator.capacity_fit import DEFAULT_BILLIONS, model_billions

    measured = measured_starts(deployment, pool_name, now)
    pod_seconds, pod_note = measured.pod_seconds, measured.pod_note
    if pod_seconds is None:
        billions = model_billions(deployment.model) or DEFAULT_BILLIONS
        pod_seconds = round(DEFAULT_POD_START_BASE_SECONDS + DEFAULT_LOAD_SECONDS_PER_BILLION * billions)
        pod_note = (
            f"pod start {pod_seconds} s (default for a {billions:g}B model: none measured; "
            f"{DEFAULT_POD_START_BASE_SECONDS} s pull + {DEFAULT_LOAD_SECONDS_PER_BILLION:g} s per billion)"
        )
    node_seconds, node_note = measured.node_seconds, measured.node_note
    if node_seconds is None:
        node_seconds = DEFAULT_NODE_START_SECONDS
        node_note = f"node start {node_seconds} s (default: none measured)"
    return pod_seconds, node_seconds, [f"cold start: {pod_note}, {node_note}"]


def deployment_history(
    *, deployment: ModelDeployment, hours: float, now: datetime, step_seconds: int = STEP_SECONDS
) -> History:
    """The deployment's replay model and its measured traffic over the last `hours`.

    Raises ApplicationError when the cluster has no Prometheus, it cannot be reached, or no pod
    of the deployment reported in the range.
    """
    from fleet.backends.base import BackendError, DeploymentRef
    from fleet.backends.registry import metrics_backend

    if not 0 < hours <= MAX_HOURS:
        raise ApplicationError(f"history is at most {MAX_HOURS:g} hours, not {hours:g}", field="hours")
    cluster = deployment.cluster
    if not cluster.prometheus_url:  # the history is Prometheus's; a simulated world replays itself
        raise ApplicationError(f"{cluster.name} has no Prometheus to read the deployment's history from", status=409)
    backend = metrics_backend(cluster)
    end = int(now.timestamp()) // step_seconds * step_seconds
    start = end - round(hours * 3600)
    try:
        points = backend.deployment_history(
            DeploymentRef(deployment.namespace, deployment.name, ()),
            start=datetime.fromtimestamp(start, now.tzinfo),
            end=datetime.fromtimestamp(end, now.tzinfo),
            step_seconds=step_seconds,
        )
    except BackendError as exc:
        raise ApplicationError(f"cannot read the deployment's history: {exc}", status=409) from exc
    finally:
        backend.close()
    if not points:
        raise ApplicationError(f"no pod of {deployment} reported to Prometheus in the last {hours:g} hours", status=409)
    minutes = list(_minutes(points).values())
    prompt, output = token_means(minutes)
    prompt, output = prompt or 800.0, output if output is not None else 200.0
    pool, pool_notes = _pool(deployment, now)
    gpus = _gpus_per_replica(deployment)
    table, table_note = table_capacity(
        gpu_product=pool.get("gpu_product", ""), gpus_per_replica=gpus, model=deployment.model
    )
    fit = fit_capacity(
        minutes, slo_seconds=deployment.slo_seconds, table=table, table_note=table_note, prompt=prompt, output=output
    )
    pod_start, node_start, start_notes = _cold_start(deployment, pool.get("pool", ""), now)
    gpus_per_node = pool.get("gpus_per_node", 1.0)
    slots = pool.get("free_gpus", 0) / gpus if not pool.get("mig") else 0
    model = DeploymentModel(
        capacity=fit.capacity,
        gpus_per_replica=gpus,
        price_per_gpu_hour_usd=pool.get("price", DEFAULT_PRICE_PER_GPU_HOUR_USD),
        pod_start_seconds=pod_start,
        node_start_seconds=node_start,
        replicas_per_node=max(1, int(gpus_per_node // gpus)),
        gpus_per_node=gpus_per_node,
        free_replica_slots=int(slots),
        max_new_nodes=pool.get("max_new_nodes", DEFAULT_MAX_NEW_NODES),
        embedding=output == 0,
        notes=(
            f"deployment history: {len(points)} minutes measured in Prometheus over {hours:g} h; "
            f"{prompt:.0f} prompt and {output:.0f} generated tokens per request",
            fit.note,
            *start_notes,
            *pool_notes,
        ),
    )
    load = load_from_history(points, start=start, seconds=end - start + step_seconds, step_seconds=step_seconds)
    return History(model=model, load=load, minutes_measured=len(points))
