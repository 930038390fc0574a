from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.htmx import filter_errors, render_filtered
from fleet import mig, selectors
from fleet.backends.base import GpuUtilization
from fleet.cold_start import NodeStart, node_starts
from fleet.filters import NodeFilterSet
from fleet.metrics import node_gpu_utilization
from fleet.models import Gpu, GpuNode, ModelDeployment, Pod

NODES_PER_PAGE = 50
# Distinct, readable on white, and not grey (grey means free).
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#3f51b5",
    "#009688",
    "#795548",
)
OTHER_POD_COLOUR = "#4b5563"


def deployment_colour(deployment_id: int) -> str:
    """A deployment keeps its colour on every page and every visit."""
    return PALETTE[deployment_id % len(PALETTE)]


@dataclass(frozen=True)
class Segment:
    """A whole GPU or one MIG slice, as drawn: `width` in % of the GPU's compute."""

    label: str
    width: float
    pod: Pod | None = None
    util_id: str = ""
    kind: str = "held"  # "held" | "free" | "unallocated"

    @property
    def short_label(self) -> str:
        """What fits inside the box: "3g" of "3g.40gb" (the full profile is in the tooltip)."""
        return self.label.split(".", 1)[0]

    @property
    def width_css(self) -> str:
        return f"{self.width:.3f}"

    @property
    def deployment(self) -> ModelDeployment | None:
        return self.pod.deployment if self.pod is not None else None

    @property
    def colour(self) -> str:
        if self.pod is None:
            return ""
        return deployment_colour(self.pod.deployment_id) if self.pod.deployment_id else OTHER_POD_COLOUR

    @property
    def holder(self) -> str:
        if self.pod is None:
            return "free" if self.kind == "free" else "not partitioned"
        if self.pod.deployment_id:
            return f"{self.pod.deployment} (pod {self.pod.name})"
        return f"pod {self.pod.namespace}/{self.pod.name}"


@dataclass(frozen=True)
class GpuBox:
    gpu: Gpu
    segments: list[Segment]
    util_id: str


@dataclass
class NodeCard:
    node: GpuNode
    gpus: list[GpuBox]


@dataclass
class PoolGroup:
    name: str
    nodes: list[NodeCard] = field(default_factory=list)
    node_start: NodeStart | None = None  # NodeClaim launched -> node Ready, measured over 7 days


@dataclass
class ClusterGroup:
    cluster: object
    pools: list[PoolGroup] = field(default_factory=list)


def gpu_box(gpu: Gpu) -> GpuBox:
    """A GPU as segments: one for a whole GPU; its MIG slices (width = compute slices of the total) otherwise."""
    if not gpu.mig_enabled:
        kind = "held" if gpu.pod_id else "free"
        return GpuBox(gpu, [Segment("whole GPU", 100.0, gpu.pod, f"gpu-util-{gpu.id}", kind)], f"gpu-util-{gpu.id}")
    model = mig.gpu_models().get(gpu.product)
    total = model.total_slices if model else 7
    segments, used = [], 0
    for device in sorted(gpu.mig_devices.all(), key=lambda d: d.slot):
        width = min(device.compute_slices, total - used) if used < total else 0
        used += device.compute_slices
        segments.append(
            Segment(
                device.profile,
                100.0 * width / total,
                device.pod,
                f"mig-util-{device.id}",
                "held" if device.pod_id else "free",
            )
        )
    if used < total:
        unused = total - used
        label = f"{unused} unused slice{'s' if unused > 1 else ''}"
        segments.append(Segment(label, 100.0 * unused / total, None, "", "unallocated"))
    return GpuBox(gpu, segments, f"gpu-util-{gpu.id}")


def _filtered_page(request):
    filterset = NodeFilterSet(request.GET, queryset=selectors.node_queryset(include_gone=True))
    errors = filter_errors(filterset)
    rows = filterset.qs if not errors else GpuNode.objects.none()
    page = Paginator(selectors.with_gpu_layout(rows), NODES_PER_PAGE).get_page(request.GET.get("page"))
    return filterset, errors, page


@require_GET
def nodes(request):
    """GPU nodes by cluster and pool, each GPU drawn with its MIG slices coloured by the deployment holding it."""
    filterset, errors, page = _filtered_page(request)
    page_nodes = list(page.object_list)
    groups: list[ClusterGroup] = []
    legend: dict[int, ModelDeployment] = {}
    other_pods = False
    for node in page_nodes:
        if not groups or groups[-1].cluster.id != node.cluster_id:
            groups.append(ClusterGroup(node.cluster))
        pools = groups[-1].pools
        pool_name = node.node_pool.name if node.node_pool_id else ""
        if not pools or pools[-1].name != pool_name:
            pools.append(PoolGroup(pool_name))
        boxes = [gpu_box(gpu) for gpu in node.gpus.all()]
        for box in boxes:
            for segment in box.segments:
                if segment.pod is not None and segment.pod.deployment_id:
                    legend[segment.pod.deployment_id] = segment.pod.deployment
                elif segment.pod is not None:
                    other_pods = True
        pools[-1].nodes.append(NodeCard(node, boxes))
    starts = node_starts(cluster_ids=[g.cluster.id for g in groups], now=timezone.now())
    for group in groups:
        for pool in group.pools:
            pool.node_start = starts.get((group.cluster.id, pool.name))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "filter_errors": errors,
        "choices": selectors.node_filter_choices(),
        "capacity_types": GpuNode.CapacityType.choices,
        "page": page,
        "page_nodes": page_nodes,  # priced at once by costing's `nodes_cost_now` tag
        "groups": groups,
        "legend": [(d, deployment_colour(d.id)) for d in sorted(legend.values(), key=lambda d: str(d))],
        "other_pod_colour": OTHER_POD_COLOUR if other_pods else None,
        "query": query.urlencode(),
        "page_query": request.GET.urlencode(),
    }
    return render_filtered(request, "fleet/nodes.html", context)


@require_GET
def nodes_gpu_utilization(request):
    """Fragment: per-GPU and per-slice utilization of the nodes on the same page, as out-of-band swaps."""
    _, errors, page = _filtered_page(request)
    page_nodes = [] if errors else list(page.object_list)
    readings = node_gpu_utilization(page_nodes)
    cells: list[tuple[str, float | None, str]] = []  # (dom id, 0-1 utilization, title)
    for node in page_nodes:
        for gpu in node.gpus.all():
            if not gpu.mig_enabled:
                reading = readings.whole_gpu(node.id, gpu.index)
                if reading is not None:
                    cells.append((f"gpu-util-{gpu.id}", reading.utilization, _title(reading)))
                continue
            matched = match_mig_readings(
                sorted(gpu.mig_devices.all(), key=lambda d: d.slot), readings.mig_slices(node.id, gpu.index)
            )
            for device_id, (reading, approximate) in matched.items():
                title = _title(reading)
                if approximate:
                    title = f"{APPROXIMATE_NOTE}{'; ' if title else ''}{title}"
                cells.append((f"mig-util-{device_id}", reading.utilization, title))
    context = {"cells": cells, "unavailable": readings.unavailable, "as_of": readings.as_of}
    return render(request, "fleet/_nodes_gpu_utilization.html", context)


APPROXIMATE_NOTE = "approximate: matched to this slice by position, not by its pod"


def match_mig_readings(devices, readings) -> dict[int, tuple[GpuUtilization, bool]]:
    """MIG slice readings of one GPU -> {MigDevice id: (reading, approximate)}.

    A reading never goes to two slices, nor to a slice of another profile (a reading of a
    profile the GPU has no slice of is dropped).

    1. A reading that names the pod holding its slice goes to the slice of that profile held
       by that pod: exact.
    2. The rest are positional, per profile: the readings in ascending GPU-instance id order go
       to the remaining slices in ascending slot order. DCGM's GPU_I_ID is the GPU-instance id,
       not our slot index, and is not contiguous (3g+3g on an A100: 1 and 2; 7x1g: 7..13), so
       this is only a best guess when the GPU has several slices of the profile: `approximate`
       is then True (the page says so in the value's title). The only slice of its profile on
       the GPU is not a guess.
    """
    out: dict[int, tuple[GpuUtilization, bool]] = {}
    left: list[GpuUtilization] = []
    for reading in readings:
        holder = (reading.namespace, reading.pod)
        device = None
        if reading.pod:
            device = next(
                (
                    d
                    for d in devices
                    if d.id not in out
                    and d.profile == reading.mig_profile
                    and d.pod is not None
                    and (d.pod.namespace, d.pod.name) == holder
                ),
                None,
            )
        if device is None:
            left.append(reading)
        else:
            out[device.id] = (reading, False)
    by_profile: dict[str, list[GpuUtilization]] = defaultdict(list)
    for reading in sorted(left, key=lambda r: (r.mig_instance_id is None, r.mig_instance_id or 0)):
        by_profile[reading.mig_profile].append(reading)
    per_profile = Counter(d.profile for d in devices)
    for device in sorted(devices, key=lambda d: d.slot):
        queue = by_profile.get(device.profile)
        if device.id not in out and queue:
            out[device.id] = (queue.pop(0), per_profile[device.profile] > 1)
    return out


def _title(reading) -> str:
    parts = []
    if reading.memory_used_mib is not None:
        parts.append(f"memory used {reading.memory_used_mib:,.0f} MiB")
    if reading.power_watts is not None:
        parts.append(f"power {reading.power_watts:,.0f} W")
    if reading.temperature_c is not None:
        parts.append(f"{reading.temperature_c:.0f} °C")
    return ", ".join(parts)
