"""MIG profile catalogue and layouts: pure logic, no ORM, no I/O beyond reading the bundled data files.

Data (bundled in fleet/data/, from NVIDIA's go-nvml tables and mig-parted's default config):
- `mig_profiles_by_gpu.csv`: valid profiles per GPU product label, with compute slices,
  memory and max instances;
- `mig-parted_config-default_flattened.csv`: the named layouts (`all-1g.10gb`, `all-balanced`...)
  the GPU operator applies when a node is labelled `nvidia.com/mig.config=<layout>`; a cluster's
  own mig-parted ConfigMap replaces them where it can be read (`fleet.mig_parted`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

from fleet.mig_parted import MigPartedConfig, bundled_mig_parted_config

DATA_DIR = Path(__file__).resolve().parent / "data"
_PROFILE_SLICES = re.compile(r"^(\d+)g\.")


@dataclass(frozen=True)
class MigProfile:
    name: str  # "3g.40gb"
    compute_slices: int  # 3
    memory_mib: int
    max_instances: int


@dataclass(frozen=True)
class GpuModel:
    product_label: str  # nvidia.com/gpu.product, "NVIDIA-A100-SXM4-80GB"
    pci_device_id: str
    total_slices: int  # 7 on A100/H100, 4 on A30
    profiles: dict[str, MigProfile]


@dataclass(frozen=True)
class MigSlot:
    """One MIG instance on one GPU: its position (`slot`) in the GPU's layout."""

    gpu_index: int
    slot: int
    profile: str
    compute_slices: int
    memory_mib: int


@cache
def gpu_models() -> dict[str, GpuModel]:
    rows: dict[str, list[dict]] = {}
    with open(DATA_DIR / "mig_profiles_by_gpu.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["nvidia_com_gpu_product_label"], []).append(row)
    models = {}
    for label, profile_rows in rows.items():
        profiles = {
            r["mig_profile"]: MigProfile(
                name=r["mig_profile"],
                compute_slices=int(r["gi_slices"]),
                memory_mib=int(r["instance_memory_mb"]),
                max_instances=int(r["max_instances"]),
            )
            for r in profile_rows
        }
        models[label] = GpuModel(
            product_label=label,
            pci_device_id=profile_rows[0]["pci_device_id"].lower(),
            total_slices=max(p.compute_slices for p in profiles.values()),
            profiles=profiles,
        )
    return models


def layout_names(config: MigPartedConfig | None = None) -> list[str]:
    """The named layouts of a mig-parted config (the bundled default when none is given)."""
    return sorted((config or bundled_mig_parted_config()).layouts)


def profile_compute_slices(profile: str) -> int:
    """`3g.40gb` -> 3. Raises ValueError for a name that is not a MIG profile."""
    match = _PROFILE_SLICES.match(profile)
    if not match:
        raise ValueError(f"{profile!r} is not a MIG profile name")
    return int(match.group(1))


def slice_fraction(profile: str, gpu_product: str) -> Fraction:
    """The share of a GPU's compute a MIG instance costs: a 1g slice of an A100 or H100 is 1/7."""
    model = gpu_models().get(gpu_product)
    total = model.total_slices if model else 7
    slices = model.profiles[profile].compute_slices if model and profile in model.profiles else None
    if slices is None:
        slices = profile_compute_slices(profile)
    return Fraction(min(slices, total), total)


def layout_for_gpu(layout: str, gpu_product: str, config: MigPartedConfig | None = None) -> dict[str, int] | None:
    """Per-GPU devices of a named layout for this GPU model, e.g. {"1g.10gb": 7}, from `config`
    (the cluster's mig-parted config; the bundled default when None).

    None when the layout is unknown, does not apply to this GPU (then the caller falls back
    to the node's capacity), or gives GPUs of one node different layouts (entries listing GPU
    indexes). {} when the layout disables MIG.
    """
    entries = (config or bundled_mig_parted_config()).layouts.get(layout)
    if not entries:
        return None
    model = gpu_models().get(gpu_product)
    pci = model.pci_device_id if model else None
    matching = [e for e in entries if e.device_filter and pci and pci in e.device_filter]
    if not matching:
        matching = [e for e in entries if not e.device_filter]
    if not matching or any(e.devices is not None for e in matching):
        return None
    if any(not e.mig_enabled for e in matching):
        return {}
    devices: dict[str, int] = {}
    for entry in matching:
        for profile, count in entry.mig_devices:
            devices[profile] = devices.get(profile, 0) + count
    if model and any(p not in model.profiles for p in devices):
        return None  # e.g. all-1g.5gb on an 80GB A100: the operator would reject it
    return devices


def node_mig_slots(
    *, gpu_product: str, gpu_count: int, mig_config: str | None, mig_devices: dict[str, int]
) -> list[MigSlot]:
    """Every MIG instance of a node, placed on its GPUs.

    The named layout says what each GPU holds; when it is unknown, the node's capacity
    (`nvidia.com/mig-<profile>` counts) is spread over the GPUs in order. Capacity wins when
    the two disagree (the mig-manager may not have applied the layout yet): the result always
    has exactly the node's capacity counts.
    """
    if gpu_count <= 0 or not mig_devices:
        return []
    per_gpu = layout_for_gpu(mig_config, gpu_product) if mig_config else None
    if per_gpu and any(count * gpu_count != mig_devices.get(p, 0) for p, count in per_gpu.items()):
        per_gpu = None
    if per_gpu and set(per_gpu) != set(mig_devices):
        per_gpu = None
    model = gpu_models().get(gpu_product)

    def describe(profile: str) -> tuple[int, int]:
        if model and profile in model.profiles:
            return model.profiles[profile].compute_slices, model.profiles[profile].memory_mib
        try:
            return profile_compute_slices(profile), 0
        except ValueError:
            return 1, 0

    per_gpu_lists: list[list[str]] = [[] for _ in range(gpu_count)]
    if per_gpu:
        for gpu in per_gpu_lists:
            for profile in sorted(per_gpu, key=lambda p: (-describe(p)[0], p)):
                gpu.extend([profile] * per_gpu[profile])
    else:
        # Round-robin the instances over GPUs, largest profiles first.
        i = 0
        for profile in sorted(mig_devices, key=lambda p: (-describe(p)[0], p)):
            for _ in range(mig_devices[profile]):
                per_gpu_lists[i % gpu_count].append(profile)
                i += 1
    slots = []
    for gpu_index, profiles in enumerate(per_gpu_lists):
        for slot, profile in enumerate(profiles):
            compute, memory = describe(profile)
            slots.append(MigSlot(gpu_index, slot, profile, compute, memory))
    return slots
