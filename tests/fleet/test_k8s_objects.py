"""Reading Kubernetes objects into snapshot facts: plain dicts in, no HTTP, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.backends.base import one_line
from fleet.backends.kubernetes.objects import RawLists, read_snapshot

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def snapshot_of(nodes=(), pods=()):
    raw = RawLists(
        nodes=list(nodes),
        pods=list(pods),
        replicasets=[],
        deployments=[],
        hpas=[],
        scaledobjects=[],
        quotas=[],
        nodepools=[],
    )
    return read_snapshot(raw, taken_at=NOW)


def node(name: str, labels: dict, gpus: str) -> dict:
    capacity = {"cpu": "96", "nvidia.com/gpu": gpus}
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def single_strategy_node(
    name="a100-single", *, product="NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", devices=16, layout: str | None = "all-3g.40gb"
) -> dict:
    labels = {
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(devices),
        "nvidia.com/gpu.memory": "40192",
        "nvidia.com/mig.strategy": "single",
    }
    if layout:
        labels["nvidia.com/mig.config"] = layout
    return node(name, labels, str(devices))


def pod(name: str, node_name: str, gpus: str) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "llm",
            "ownerReferences": [{"kind": "Job", "name": "eval", "controller": True}],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        },
        "status": {"phase": "Running"},
    }


def test_it_reads_a_single_strategy_mig_node_as_its_physical_gpus_and_slices():
    snapshot, warnings = snapshot_of([single_strategy_node()])

    n = snapshot.nodes[0]
    assert (n.gpu_product, n.gpu_count) == ("NVIDIA-A100-SXM4-80GB", 8)  # 2 x 3g.40gb per A100
    assert n.mig_devices == {"3g.40gb": 16}
    assert n.capacity == {"nvidia.com/gpu": 0, "nvidia.com/mig-3g.40gb": 16}
    assert n.allocatable == {"nvidia.com/gpu": 0, "nvidia.com/mig-3g.40gb": 16}
    assert (n.mig_config, n.mig_strategy) == ("all-3g.40gb", "single")
    assert n.gpu_memory_mib == 0  # the label is the slice's memory, not the GPU's: unknown
    assert warnings == []


def test_it_counts_single_strategy_gpus_from_the_profile_when_the_layout_is_not_labelled():
    unlabelled = single_strategy_node(product="NVIDIA-A100-SXM4-80GB-MIG-1g.10gb", devices=56, layout=None)
    snapshot, _ = snapshot_of([unlabelled])

    assert snapshot.nodes[0].gpu_count == 8  # at most 7 1g.10gb instances per A100 80GB
    assert snapshot.nodes[0].mig_devices == {"1g.10gb": 56}


def test_it_says_when_it_cannot_tell_how_many_gpus_hold_the_slices():
    snapshot, warnings = snapshot_of([single_strategy_node(product="NVIDIA-Z900-MIG-2g.30gb", devices=6, layout=None)])

    assert (snapshot.nodes[0].gpu_product, snapshot.nodes[0].gpu_count) == ("NVIDIA-Z900", 6)
    assert warnings == ["node a100-single: cannot tell how many GPUs hold its 6 MIG 2g.30gb devices; one each"]


def test_it_reads_a_pod_holding_nvidia_gpu_on_a_single_strategy_node_as_holding_a_slice():
    whole = node("h100", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}, "8")
    snapshot, _ = snapshot_of(
        [single_strategy_node(), whole], [pod("on-slices", "a100-single", "2"), pod("on-whole", "h100", "2")]
    )

    requests = {p.name: p.gpu_requests for p in snapshot.pods}
    assert requests == {"on-slices": {"nvidia.com/mig-3g.40gb": 2}, "on-whole": {"nvidia.com/gpu": 2}}


def test_it_leaves_mixed_strategy_and_whole_gpu_nodes_as_they_are():
    mixed = node(
        "mixed",
        {
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
            "nvidia.com/gpu.count": "8",
            "nvidia.com/mig.strategy": "mixed",
            "nvidia.com/mig.config": "all-1g.10gb",
        },
        "0",
    )
    mixed["status"]["capacity"]["nvidia.com/mig-1g.10gb"] = "56"
    # The GPU operator labels every node with the strategy, MIG or not.
    whole = node(
        "whole",
        {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "4", "nvidia.com/mig.strategy": "single"},
        "4",
    )

    snapshot, _ = snapshot_of([mixed, whole])

    by_name = {n.name: n for n in snapshot.nodes}
    assert (by_name["mixed"].gpu_count, by_name["mixed"].capacity) == (
        8,
        {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 56},
    )
    assert (by_name["whole"].gpu_product, by_name["whole"].gpu_count) == ("NVIDIA-L4", 4)
    assert (by_name["whole"].capacity, by_name["whole"].mig_strategy) == ({"nvidia.com/gpu": 4}, None)


@pytest.mark.parametrize(
    ("text", "limit", "line"),
    [
        ("quota\n  exceeded:\tgpu", 160, "quota exceeded: gpu"),  # the Kubernetes and Prometheus errors alike
        ("\x1b[31mred\x00", 160, "[31mred"),
        (b"bytes", 160, "b'bytes'"),
        ("x" * 30, 20, "x" * 19 + "…"),
    ],
)
def test_one_line_makes_any_text_one_printable_line(text, limit, line):
    assert one_line(text, limit) == line
