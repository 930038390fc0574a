"""GPU models and their MIG layouts, as the NVIDIA GPU operator applies them.

Stdlib-only copy of the few rows the simulator needs from
`data/crds/mig/mig_profiles_by_gpu.csv` and `mig-parted__config-default.yaml`: which
profiles a GPU offers, how big each slice is, and which named layouts
(`nvidia.com/mig.config=<layout>`) cut each physical GPU into which slices. A layout name
applies to every GPU of the node, the way mig-parted's `all-*` configs do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SimInvalid

MIG_DISABLED = "all-disabled"
COMPUTE_SLICES_PER_GPU = 7  # A100/H100: a 1g slice is 1/7 of the GPU's compute

# GPU instance ids nvidia-smi hands out first for each slice size; ids then count up
# within a GPU. Close enough to real placements for DCGM's GPU_I_ID label.
_FIRST_INSTANCE_ID = {7: 0, 4: 1, 3: 1, 2: 3, 1: 7}


@dataclass(frozen=True)
class MigProfile:
    name: str  # "1g.10gb"
    compute_slices: int
    memory_mib: int


@dataclass(frozen=True)
class GpuModel:
    product: str  # the nvidia.com/gpu.product label value
    memory_mib: int  # the nvidia.com/gpu.memory label value
    tdp_watts: int
    idle_watts: int
    profiles: tuple[MigProfile, ...] = ()
    layouts: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()  # name -> per-GPU slices

    def profile(self, name: str) -> MigProfile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise SimInvalid(f"{self.product} has no MIG profile {name!r}")

    def layout(self, name: str) -> tuple[tuple[str, int], ...]:
        for layout_name, slices in self.layouts:
            if layout_name == name:
                return slices
        known = ", ".join([MIG_DISABLED, *(n for n, _ in self.layouts)]) if self.layouts else "none"
        raise SimInvalid(f"MIG layout {name!r} is not valid for {self.product} (valid: {known})")


def _eighty_gb(product: str, memory_mib: int, tdp: int, idle: int, sizes: dict[str, int]) -> GpuModel:
    profiles = tuple(MigProfile(name, int(name[0]), mib) for name, mib in sizes.items())
    one, two, three, four, seven = (p.name for p in profiles)
    layouts = (
        (f"all-{one}", ((one, 7),)),
        (f"all-{two}", ((two, 3),)),
        (f"all-{three}", ((three, 2),)),
        (f"all-{four}", ((four, 1),)),
        (f"all-{seven}", ((seven, 1),)),
        ("all-balanced", ((three, 1), (two, 1), (one, 2))),
    )
    return GpuModel(product, memory_mib, tdp, idle, profiles, layouts)


GPU_MODELS: dict[str, GpuModel] = {
    m.product: m
    for m in (
        _eighty_gb(
            "NVIDIA-A100-SXM4-80GB",
            81920,
            400,
            60,
            {"1g.10gb": 9856, "2g.20gb": 19968, "3g.40gb": 40192, "4g.40gb": 40192, "7g.80gb": 80384},
        ),
        _eighty_gb(
            "NVIDIA-H100-80GB-HBM3",
            81559,
            700,
            70,
            {"1g.10gb": 10240, "2g.20gb": 20480, "3g.40gb": 40960, "4g.40gb": 40960, "7g.80gb": 81920},
        ),
        _eighty_gb(
            "NVIDIA-A100-SXM4-40GB",
            40960,
            400,
            55,
            {"1g.5gb": 4864, "2g.10gb": 9856, "3g.20gb": 19968, "4g.20gb": 19968, "7g.40gb": 40192},
        ),
        GpuModel("NVIDIA-A10G", 23028, 300, 25),
        GpuModel("NVIDIA-L4", 23034, 72, 16),
    )
}


def gpu_model(product: str) -> GpuModel:
    """The catalog entry, or a plain MIG-less model for a GPU the catalog does not know."""
    return GPU_MODELS.get(product) or GpuModel(product, 0, 300, 30)


def validate_layout(product: str, layout: str | None) -> None:
    if layout in (None, MIG_DISABLED):
        return
    gpu_model(product).layout(layout)


def layout_devices(product: str, layout: str | None, gpu_count: int) -> list[tuple[int, str | None, int | None]]:
    """Every schedulable device of a node: (gpu index, MIG profile or None, GPU instance id or None)."""
    if layout in (None, MIG_DISABLED):
        return [(index, None, None) for index in range(gpu_count)]
    slices = gpu_model(product).layout(layout)
    devices: list[tuple[int, str | None, int | None]] = []
    for index in range(gpu_count):
        used_ids: set[int] = set()
        for profile, count in slices:
            instance_id = _FIRST_INSTANCE_ID[int(profile[0])]
            for _ in range(count):
                while instance_id in used_ids:
                    instance_id += 1
                used_ids.add(instance_id)
                devices.append((index, profile, instance_id))
    return devices


def mig_counts(product: str, layout: str | None, gpu_count: int) -> dict[str, int]:
    """Profile -> number of slices on the node, as the device plugin advertises them."""
    counts: dict[str, int] = {}
    if layout in (None, MIG_DISABLED):
        return counts
    for profile, count in gpu_model(product).layout(layout):
        counts[profile] = counts.get(profile, 0) + count * gpu_count
    return counts


def compute_fraction(profile: str | None) -> float:
    """Share of one GPU's compute a device holds: 1 for a whole GPU, 3/7 for a 3g slice."""
    if profile is None:
        return 1.0
    return int(profile.split("g.", 1)[0]) / COMPUTE_SLICES_PER_GPU


def device_memory_mib(product: str, profile: str | None) -> int:
    model = gpu_model(product)
    return model.memory_mib if profile is None else model.profile(profile).memory_mib
