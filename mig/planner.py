"""The MIG planner: fit each deployment's replicas into valid MIG slices of a node pool's GPUs and
pick a `nvidia.com/mig.config` per node. Pure: values in, a plan out; no ORM, no clock, no I/O.

A MIG instance takes compute slices (7 on A100/H100/H200) and memory slices (8) of one GPU, and a
profile may appear at most `max_instances` times per GPU: a layout is valid when all three hold
(NVIDIA's combination tables follow from them, e.g. 4g+3g, 3g+2g+1g+1g, 3 x 2g + 1g).

Replicas are packed first-fit decreasing into GPUs, then GPUs into nodes in order. For each node
the planner prefers a layout the cluster's mig-parted config already names (`all-3g.40gb`,
`all-balanced`) when it serves as much as a custom one; otherwise it writes a custom layout, shown
as the ConfigMap entry to add. GPUs a node does not need for slices stay whole for the deployments
that need a full GPU or more (those are left whole, with why). Nodes left with nothing are freed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from fleet.mig import GpuModel

MEMORY_SLICES = 8


@dataclass(frozen=True)
class NodeShape:
    name: str
    gpu_product: str
    gpu_count: int
    mig_config: str
    devices: dict[str, int]  # MIG devices the node advertises now, per profile
    usd_per_hour: Decimal | None


@dataclass(frozen=True)
class DeploymentDemand:
    id: int
    name: str  # namespace/name
    replicas: int
    need_mib: int | None  # per GPU, with the buffer; None when unknown
    why_unknown: str = ""
    gpus_per_replica: int = 1
    tensor_parallel: int = 1
    usd_per_hour_now: Decimal | None = None
    generated_tokens_per_hour: float | None = None


@dataclass(frozen=True)
class Placement:
    deployment_id: int
    deployment: str
    profile: str
    replicas: int
    need_mib: int
    usd_per_hour_after: Decimal | None
    usd_per_million_tokens_before: Decimal | None
    usd_per_million_tokens_after: Decimal | None


@dataclass(frozen=True)
class KeptWhole:
    deployment_id: int
    deployment: str
    why: str
    whole_gpus: int  # GPUs it keeps (replicas x GPUs per replica)


@dataclass(frozen=True)
class NodeChange:
    node: str
    from_config: str
    to_config: str
    devices_before: dict[str, int]
    devices_after: dict[str, int]
    whole_gpus_after: int
    freed: bool
    custom_entry: str = ""  # the mig-parted ConfigMap entry to add, for a custom layout
    gpu_layouts: tuple[dict[str, int], ...] = ()  # MIG devices per GPU after (empty dict: a whole GPU)


@dataclass(frozen=True)
class Plan:
    gpu_product: str
    nodes: list[NodeChange]
    placements: list[Placement]
    kept_whole: list[KeptWhole]
    unplaced: list[str]  # what did not fit the pool, in words
    usd_per_hour_before: Decimal | None
    usd_per_hour_after: Decimal | None


@dataclass
class _Gpu:
    compute_free: int
    memory_free: int
    profiles: Counter = field(default_factory=Counter)


def memory_slices(model: GpuModel, profile: str) -> int:
    """Memory slices a profile takes: its memory over an eighth of the GPU's (1g.10gb on an 80 GB GPU: 1)."""
    device_mib = max(p.memory_mib for p in model.profiles.values())
    return max(1, round(model.profiles[profile].memory_mib * MEMORY_SLICES / device_mib))


def layout_is_valid(model: GpuModel, devices: dict[str, int]) -> bool:
    """One GPU holding `devices` ({"3g.40gb": 1, "4g.40gb": 1}): profiles that exist, that fit."""
    if any(p not in model.profiles or n < 0 or n > model.profiles[p].max_instances for p, n in devices.items()):
        return False
    compute = sum(model.profiles[p].compute_slices * n for p, n in devices.items())
    memory = sum(memory_slices(model, p) * n for p, n in devices.items())
    return compute <= model.total_slices and memory <= MEMORY_SLICES


def plannable_profiles(model: GpuModel) -> list[str]:
    """Profiles a replica may get: less than the whole GPU, without media-extension variants."""
    return sorted(
        (p.name for p in model.profiles.values() if "+" not in p.name and p.compute_slices < model.total_slices),
        key=lambda name: (model.profiles[name].compute_slices, model.profiles[name].memory_mib),
    )


def smallest_fitting_profile(model: GpuModel, need_mib: int) -> str | None:
    """The cheapest slice (fewest compute slices, then least memory) holding `need_mib`."""
    return next((p for p in plannable_profiles(model) if model.profiles[p].memory_mib >= need_mib), None)


def _fits(model: GpuModel, gpu: _Gpu, profile: str) -> bool:
    p = model.profiles[profile]
    return (
        gpu.compute_free >= p.compute_slices
        and gpu.memory_free >= memory_slices(model, profile)
        and gpu.profiles[profile] < p.max_instances
    )


def _put(model: GpuModel, gpu: _Gpu, profile: str) -> None:
    gpu.compute_free -= model.profiles[profile].compute_slices
    gpu.memory_free -= memory_slices(model, profile)
    gpu.profiles[profile] += 1


def pack(model: GpuModel, demand: Counter, gpus: int) -> tuple[list[Counter], Counter]:
    """First-fit decreasing of `demand` ({profile: instances}) into at most `gpus` GPUs.
    Returns the per-GPU layouts used (no empty ones) and what did not fit."""
    bins: list[_Gpu] = []
    left: Counter = Counter()
    order = sorted(demand, key=lambda p: (-model.profiles[p].compute_slices, -model.profiles[p].memory_mib, p))
    for profile in order:
        for _ in range(demand[profile]):
            target = next((b for b in bins if _fits(model, b, profile)), None)
            if target is None and len(bins) < gpus:
                target = _Gpu(model.total_slices, MEMORY_SLICES)
                bins.append(target)
            if target is None:
                left[profile] += 1
            else:
                _put(model, target, profile)
    return [b.profiles for b in bins], left


def custom_config(layouts: list[Counter], gpu_count: int) -> tuple[str, str]:
    """(name, mig-parted entry) of a custom per-GPU layout; GPUs past `layouts` stay whole.
    The name is a digest of the layout, so the same layout always gets the same name."""
    groups: dict[str, list[int]] = {}
    for index, layout in enumerate(layouts):
        key = json.dumps(dict(sorted(layout.items())))
        groups.setdefault(key, []).append(index)
    lines = []
    for key, devices in groups.items():
        lines.append(f"  - devices: [{', '.join(map(str, devices))}]")
        lines.append("    mig-enabled: true")
        lines.append("    mig-devices:")
        lines.extend(f'      "{profile}": {count}' for profile, count in json.loads(key).items())
    if len(layouts) < gpu_count:
        lines.append(f"  - devices: [{', '.join(map(str, range(len(layouts), gpu_count)))}]")
        lines.append("    mig-enabled: false")
    body = "\n".join(lines)
    name = "scaledeck-" + hashlib.sha256(body.encode()).hexdigest()[:10]
    return name, f"{name}:\n{body}\n"


def _served(layout_devices: dict[str, int], gpu_count: int, demand: Counter) -> Counter:
    return Counter({p: min(demand[p], n * gpu_count) for p, n in layout_devices.items() if demand[p]})


def _slices(model: GpuModel, counts: Counter) -> int:
    return sum(model.profiles[p].compute_slices * n for p, n in counts.items())


def _per_million(usd_per_hour: Decimal | None, tokens_per_hour: float | None) -> Decimal | None:
    if usd_per_hour is None or not tokens_per_hour or tokens_per_hour <= 0:
        return None
    return (usd_per_hour * Decimal(1_000_000) / Decimal(str(tokens_per_hour))).quantize(Decimal("0.0001"))


def plan_pool(
    *,
    model: GpuModel | None,
    gpu_product: str,
    nodes: list[NodeShape],
    deployments: list[DeploymentDemand],
    named_layouts: dict[str, dict[str, int]],
) -> Plan:
    """Plan one node pool of one GPU model. `named_layouts`: the cluster's mig-parted configs as
    per-GPU devices for this GPU model ({} for a layout that disables MIG)."""
    kept: list[KeptWhole] = []
    wanted: list[tuple[DeploymentDemand, str]] = []
    largest = max((model.profiles[p].memory_mib for p in plannable_profiles(model)), default=0) if model else 0
    for d in sorted(deployments, key=lambda d: (d.name, d.id)):
        gpus = max(d.gpus_per_replica, d.tensor_parallel, 1)
        whole = d.replicas * gpus
        if model is None:
            kept.append(KeptWhole(d.id, d.name, f"{gpu_product or 'this GPU'} has no MIG profiles", whole))
        elif gpus > 1:
            kept.append(
                KeptWhole(
                    d.id,
                    d.name,
                    f"needs {gpus} GPUs per replica (tensor parallel "
                    f"{d.tensor_parallel}): a MIG slice is part of one GPU",
                    whole,
                )
            )
        elif d.need_mib is None:
            kept.append(KeptWhole(d.id, d.name, f"memory need unknown: {d.why_unknown}", whole))
        else:
            profile = smallest_fitting_profile(model, d.need_mib)
            if profile is None:
                kept.append(
                    KeptWhole(
                        d.id,
                        d.name,
                        f"needs {d.need_mib / 1024:.1f} GiB per GPU, more than the "
                        f"largest partial slice ({largest / 1024:.1f} GiB): a full GPU",
                        whole,
                    )
                )
            else:
                wanted.append((d, profile))
    demand = Counter()
    for d, profile in wanted:
        demand[profile] += d.replicas
    # A replica's GPUs must sit on one node: whole GPUs are placed per replica ("chunks"), largest first.
    whole_chunks = sorted(
        (
            k.whole_gpus // max(d.replicas, 1)
            for d in deployments
            for k in kept
            if k.deployment_id == d.id
            for _ in range(d.replicas)
        ),
        reverse=True,
    )
    changes: list[NodeChange] = []
    remaining = Counter(demand)
    for node in sorted(nodes, key=lambda n: n.name):
        if model is None:
            changes.append(
                NodeChange(
                    node.name,
                    node.mig_config,
                    node.mig_config,
                    dict(node.devices),
                    dict(node.devices),
                    node.gpu_count,
                    False,
                )
            )
            continue
        if not +remaining and not whole_chunks:
            # Nothing left to host: the node can go (Karpenter consolidates it, or scale the pool down).
            changes.append(
                NodeChange(node.name, node.mig_config, node.mig_config, dict(node.devices), dict(node.devices), 0, True)
            )
            continue
        if not +remaining:
            # Whole GPUs only: a node without MIG keeps its label (relabelling it would drain it for nothing).
            to = node.mig_config if not node.devices else "all-disabled"
            entry, layouts = "", []
        else:
            custom_layouts, custom_left = pack(model, remaining, node.gpu_count)
            custom_served = remaining - custom_left
            best_named, best_served = None, Counter()
            for name, per_gpu in sorted(named_layouts.items()):
                if not per_gpu or not layout_is_valid(model, per_gpu):
                    continue
                served = _served(per_gpu, node.gpu_count, remaining)
                if _slices(model, served) > _slices(model, best_served):
                    best_named, best_served = name, served
            spare_gpus = node.gpu_count - len(custom_layouts)
            custom_better = _slices(model, custom_served) > _slices(model, best_served) or (
                bool(whole_chunks) and spare_gpus > 0
            )
            if best_named and not custom_better:
                to, entry = best_named, ""
                per_gpu = named_layouts[best_named]
                layouts = [Counter(per_gpu)] * node.gpu_count
                remaining -= best_served
            else:
                layouts = custom_layouts
                to, entry = custom_config(custom_layouts, node.gpu_count)
                remaining -= custom_served
        whole_after = node.gpu_count - len(layouts)
        whole_chunks = _fit_chunks(whole_chunks, whole_after)
        after = Counter()
        for layout in layouts:
            after.update(layout)
        per_gpu = tuple(dict(sorted(layout.items())) for layout in layouts) + ({},) * whole_after
        changes.append(
            NodeChange(
                node.name,
                node.mig_config,
                to,
                dict(node.devices),
                dict(sorted(after.items())),
                whole_after,
                False,
                entry,
                per_gpu,
            )
        )
    unplaced = [f"{n} x {p}" for p, n in sorted(remaining.items()) if n > 0]
    for gpus, count in sorted(Counter(whole_chunks).items(), reverse=True):
        unplaced.append(f"{count} replica{'s' if count != 1 else ''} of {gpus} whole GPU{'s' if gpus != 1 else ''}")
    priced = [n.usd_per_hour for n in nodes]
    before = sum(priced, Decimal(0)) if nodes and all(p is not None for p in priced) else None
    by_name = {n.name: n for n in nodes}
    after_cost = (
        sum((by_name[c.node].usd_per_hour for c in changes if not c.freed), Decimal(0)) if before is not None else None
    )
    placements = []
    for d, profile in wanted:
        gpu_price = _gpu_price(nodes)
        share = Decimal(model.profiles[profile].compute_slices) / Decimal(model.total_slices)
        cost_after = (gpu_price * share * d.replicas).quantize(Decimal("0.0001")) if gpu_price is not None else None
        placements.append(
            Placement(
                d.id,
                d.name,
                profile,
                d.replicas,
                d.need_mib or 0,
                cost_after,
                _per_million(d.usd_per_hour_now, d.generated_tokens_per_hour),
                _per_million(cost_after, d.generated_tokens_per_hour),
            )
        )
    return Plan(gpu_product, changes, placements, kept, unplaced, before, after_cost)


def _fit_chunks(chunks: list[int], free: int) -> list[int]:
    """Place replicas needing `chunk` whole GPUs each on a node with `free` whole GPUs, largest
    first; returns the ones left for the next nodes."""
    left = []
    for chunk in chunks:
        if chunk <= free:
            free -= chunk
        else:
            left.append(chunk)
    return left


def _gpu_price(nodes: list[NodeShape]) -> Decimal | None:
    """Mean $/GPU-hour of the pool's priced nodes."""
    priced = [(n.usd_per_hour, n.gpu_count) for n in nodes if n.usd_per_hour is not None and n.gpu_count]
    if not priced:
        return None
    return sum((p for p, _ in priced), Decimal(0)) / sum(c for _, c in priced)
