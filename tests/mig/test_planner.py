"""The MIG planner, pure: valid layouts per GPU model, smallest fitting slices, named configs when
they serve as well as a custom one, big models kept whole with why, nodes freed and the cost."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.mig import gpu_models, layout_for_gpu, layout_names
from mig.planner import (
    DeploymentDemand,
    NodeShape,
    layout_is_valid,
    pack,
    plan_pool,
    plannable_profiles,
    smallest_fitting_profile,
)

A100_80 = "NVIDIA-A100-SXM4-80GB"
A100_40 = "NVIDIA-A100-SXM4-40GB"
H100 = "NVIDIA-H100-80GB-HBM3"
H200 = "NVIDIA-H200"
GIB = 1024


def named(product):
    layouts = {name: layout_for_gpu(name, product) for name in layout_names()}
    return {name: devices for name, devices in layouts.items() if devices is not None}


def nodes(product, count, *, price="32.77", gpus=8, config="", devices=None):
    return [NodeShape(f"node-{i}", product, gpus, config, dict(devices or {}), Decimal(price)) for i in range(count)]


def plan(product, pool, deployments):
    return plan_pool(
        model=gpu_models().get(product),
        gpu_product=product,
        nodes=pool,
        deployments=deployments,
        named_layouts=named(product),
    )


@pytest.mark.parametrize("product", sorted(gpu_models()))
def test_every_layout_mig_parted_names_is_valid_by_the_slice_rules(product):
    model = gpu_models()[product]
    for name in layout_names():
        devices = layout_for_gpu(name, product)
        if devices:
            assert layout_is_valid(model, devices), name


@pytest.mark.parametrize(
    ("product", "devices", "valid"),
    [
        (A100_80, {"4g.40gb": 1, "3g.40gb": 1}, True),
        (A100_80, {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}, True),
        (A100_80, {"3g.40gb": 2, "1g.10gb": 1}, False),  # 9 of 8 memory slices
        (A100_80, {"4g.40gb": 2}, False),  # one 4g per GPU
        (A100_80, {"1g.20gb": 5}, False),  # at most 4
        (A100_80, {"3g.20gb": 1}, False),  # an A100 40GB profile
        (A100_40, {"3g.20gb": 2}, True),
        (H100, {"1g.10gb": 7}, True),
        (H100, {"2g.20gb": 3, "1g.10gb": 1}, True),
    ],
)
def test_it_knows_which_layouts_a_gpu_accepts(product, devices, valid):
    assert layout_is_valid(gpu_models()[product], devices) is valid


@pytest.mark.parametrize(
    ("product", "need_gib", "profile"),
    [
        (A100_80, 6, "1g.10gb"),
        (A100_80, 12, "1g.20gb"),
        (A100_80, 20.5, "3g.40gb"),
        (A100_80, 39, "3g.40gb"),
        (A100_80, 41, None),
        (A100_40, 4, "1g.5gb"),
        (A100_40, 15, "3g.20gb"),
        (H100, 19.9, "1g.20gb"),
        (H100, 40, "3g.40gb"),
        (H200, 15, "1g.18gb"),
        (H200, 30, "1g.35gb"),
        (H200, 60, "3g.71gb"),
        (H200, 80, None),
    ],
)
def test_it_picks_the_smallest_slice_that_holds_the_need(product, need_gib, profile):
    assert smallest_fitting_profile(gpu_models()[product], int(need_gib * GIB)) == profile


@settings(max_examples=60, deadline=None)
@given(product=st.sampled_from([A100_80, A100_40, H100, H200]), data=st.data())
def test_packing_only_makes_valid_gpus_and_loses_nothing(product, data):
    model = gpu_models()[product]
    profiles = plannable_profiles(model)
    demand = Counter(data.draw(st.dictionaries(st.sampled_from(profiles), st.integers(1, 12), max_size=4)))
    gpus = data.draw(st.integers(1, 16))
    layouts, left = pack(model, demand, gpus)
    assert len(layouts) <= gpus
    assert all(layout_is_valid(model, dict(layout)) for layout in layouts)
    placed = Counter()
    for layout in layouts:
        placed.update(layout)
    assert placed + left == demand


def test_small_models_share_a_node_in_a_named_layout_and_the_others_are_freed():
    pool = nodes(A100_80, 3)
    deployments = [DeploymentDemand(1, "llm/llama-8b", 6, 20 * GIB), DeploymentDemand(2, "llm/qwen-1b", 4, 6 * GIB)]

    result = plan(A100_80, pool, deployments)

    assert [(p.deployment, p.profile, p.replicas) for p in result.placements] == [
        ("llm/llama-8b", "3g.40gb", 6),
        ("llm/qwen-1b", "1g.10gb", 4),
    ]
    used = [n for n in result.nodes if not n.freed]
    assert len(used) == 1
    # mig-parted's own all-balanced (2 x 1g + 2g + 3g per GPU) holds both: no custom layout needed
    assert used[0].to_config == "all-balanced" and used[0].custom_entry == ""
    assert used[0].devices_after == {"1g.10gb": 16, "2g.20gb": 8, "3g.40gb": 8}
    assert all(layout_is_valid(gpu_models()[A100_80], layout) for layout in used[0].gpu_layouts)
    assert result.usd_per_hour_before == Decimal("98.31") and result.usd_per_hour_after == Decimal("32.77")
    assert result.unplaced == []


def test_it_keeps_big_and_tensor_parallel_models_whole_and_says_why():
    deployments = [
        DeploymentDemand(1, "llm/llama-70b", 2, 40 * GIB, gpus_per_replica=4, tensor_parallel=4),
        DeploymentDemand(2, "llm/qwen-32b", 1, 68 * GIB),
        DeploymentDemand(3, "llm/custom", 1, None, why_unknown="the parameter count is not in the model name"),
    ]

    result = plan(H100, nodes(H100, 2), deployments)

    assert result.placements == []
    why = {k.deployment: k.why for k in result.kept_whole}
    assert why["llm/llama-70b"] == "needs 4 GPUs per replica (tensor parallel 4): a MIG slice is part of one GPU"
    assert why["llm/qwen-32b"].startswith("needs 68.0 GiB per GPU, more than the largest partial slice (40.0 GiB)")
    assert why["llm/custom"] == "memory need unknown: the parameter count is not in the model name"
    assert sum(k.whole_gpus for k in result.kept_whole) == 10
    assert [n.freed for n in result.nodes] == [False, False]
    assert all(n.to_config == n.from_config for n in result.nodes)  # nothing to relabel


def test_it_names_a_config_the_cluster_offers_when_it_serves_as_well():
    result = plan(A100_80, nodes(A100_80, 2), [DeploymentDemand(1, "llm/mistral-7b", 16, 30 * GIB)])
    assert [n.to_config for n in result.nodes] == ["all-3g.40gb", ""]
    assert result.nodes[0].custom_entry == "" and result.nodes[1].freed


def test_a_custom_layout_comes_with_its_mig_parted_entry():
    result = plan(
        A100_80,
        nodes(A100_80, 1),
        [DeploymentDemand(1, "llm/a", 1, 30 * GIB), DeploymentDemand(2, "llm/b", 1, 60 * GIB)],
    )
    node = result.nodes[0]
    assert node.to_config.startswith("scaledeck-")
    entry = yaml.safe_load(node.custom_entry)[node.to_config]
    assert entry[0] == {"devices": [0], "mig-enabled": True, "mig-devices": {"3g.40gb": 1}}
    assert entry[1] == {"devices": [1, 2, 3, 4, 5, 6, 7], "mig-enabled": False}
    assert node.whole_gpus_after == 7


def test_it_says_what_does_not_fit_the_pool():
    result = plan(A100_40, nodes(A100_40, 1, gpus=1), [DeploymentDemand(1, "llm/a", 3, 15 * GIB)])
    assert result.unplaced == ["1 x 3g.20gb"]


def test_a_gpu_without_mig_keeps_everything_whole():
    result = plan("NVIDIA-L4", nodes("NVIDIA-L4", 1, gpus=1), [DeploymentDemand(1, "llm/a", 1, 6 * GIB)])
    assert result.kept_whole[0].why == "NVIDIA-L4 has no MIG profiles"
    assert result.nodes[0].to_config == "" and not result.nodes[0].freed


def test_h200_nodes_get_mig_parted_s_own_h200_layouts():
    result = plan(H200, nodes(H200, 2, price="50.44"), [DeploymentDemand(1, "llm/llama-8b", 14, 20 * GIB)])
    assert result.placements[0].profile == "1g.35gb"
    assert [n.to_config for n in result.nodes] == ["all-1g.35gb", ""]
    assert result.nodes[0].devices_after == {"1g.35gb": 32} and result.nodes[1].freed


def test_a_tensor_parallel_replica_gets_its_gpus_on_one_node():
    # Slices take 2 GPUs of node-0, leaving 2 whole there: 2 + 4 whole GPUs would count as enough
    # for two replicas of 3, but neither fits on node-0, so node-2 is still needed.
    deployments = [
        DeploymentDemand(1, "llm/tp3", 2, 40 * GIB, gpus_per_replica=3, tensor_parallel=3),
        DeploymentDemand(2, "llm/mistral-7b", 4, 30 * GIB),
    ]

    result = plan(A100_80, nodes(A100_80, 3, gpus=4), deployments)

    assert result.unplaced == []
    assert [(n.node, n.whole_gpus_after, n.freed) for n in result.nodes] == [
        ("node-0", 2, False),
        ("node-1", 4, False),
        ("node-2", 4, False),
    ]


def test_it_says_when_a_replica_needs_more_whole_gpus_than_a_node_has():
    result = plan(
        A100_80, nodes(A100_80, 2), [DeploymentDemand(1, "llm/tp16", 1, None, gpus_per_replica=16, tensor_parallel=16)]
    )
    assert result.unplaced == ["1 replica of 16 whole GPUs"]
