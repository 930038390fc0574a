"""The doctor, pure: each planted mistake gives its stable kind, a clean deployment gives none."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.autoscalers import ReplicaOwnerKind
from mig.doctor import KINDS, DeploymentCheckup, examine
from tests.factories import autoscaler_facts

SO, HP = ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA

CLEAN = DeploymentCheckup(
    gpu_resource="nvidia.com/gpu",
    gpu_per_replica=1,
    tensor_parallel=1,
    replicas_desired=3,
    liveness_initial_delay_seconds=300,
    termination_grace_seconds=600,
    max_unavailable="0",
    max_surge="1",
    autoscalers=(autoscaler_facts(SO, "llama", metric="vllm:num_requests_waiting > 5"),),
    cold_start_seconds=120,
    e2e_p95_seconds=40.0,
    gpu_memory_utilization=0.9,
    need_per_gpu_mib=60_000,
    device_memory_mib=81920,
    fitting_profile=None,
    spare_units=2,
    shared_nodes=(),
)

MISTAKES = {
    "cpu_hpa_target": dict(autoscalers=(autoscaler_facts(HP, "llama", metric="cpu utilization 80%"),)),
    "liveness_delay_short": dict(liveness_initial_delay_seconds=180),
    "termination_grace_short": dict(termination_grace_seconds=30),
    "max_unavailable": dict(max_unavailable="25%", replicas_desired=8),
    "no_surge_headroom": dict(spare_units=0),
    "gpu_memory_overrequest": dict(gpu_memory_utilization=0.95, need_per_gpu_mib=20_000, fitting_profile="3g.40gb"),
    "hpa_and_scaledobject": dict(
        autoscalers=(
            autoscaler_facts(SO, "llama", metric="vllm:num_requests_waiting"),
            autoscaler_facts(HP, "llama-hpa", metric="vllm_num_requests_waiting"),
        )
    ),
    "missing_gpu_toleration": dict(pods_waiting_for_node=2, free_units_on_tainted_nodes=4),
    "consolidation_on_serving_pool": dict(consolidating_pools=(("a100", "WhenEmptyOrUnderutilized"),)),
    "tp_without_anti_affinity": dict(tensor_parallel=4, gpu_per_replica=4, spare_units=8, shared_nodes=(("gpu-a", 2),)),
}


def test_a_clean_deployment_has_no_finding():
    assert examine(CLEAN) == []


def test_every_kind_has_a_planted_case():
    assert set(MISTAKES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_planted_mistake_is_found_alone_with_evidence(kind):
    found = examine(replace(CLEAN, **MISTAKES[kind]))
    assert [f.kind for f in found] == [kind]
    assert found[0].evidence and found[0].message


def test_a_grace_shorter_than_the_longest_generations_is_found_even_at_600_s():
    found = examine(replace(CLEAN, termination_grace_seconds=600, e2e_p95_seconds=700.0))
    assert [f.kind for f in found] == ["termination_grace_short"]
    assert "end-to-end p95 700 s" in found[0].message


def test_max_unavailable_counts_at_any_replica_count_not_only_at_two():
    assert [f.kind for f in examine(replace(CLEAN, max_unavailable="1", replicas_desired=10))] == ["max_unavailable"]
    assert examine(replace(CLEAN, max_unavailable="25%", replicas_desired=3)) == []  # rounds down to 0


def test_keda_s_own_hpa_is_not_a_second_autoscaler():
    scalers = (
        autoscaler_facts(SO, "llama", metric="vllm:num_requests_waiting"),
        autoscaler_facts(HP, "keda-hpa-llama", metric="s0-prometheus", owned_by_scaledobject="llama"),
    )
    assert examine(replace(CLEAN, autoscalers=scalers)) == []


def test_a_deployment_without_gpus_only_gets_autoscaler_conflicts():
    cpu_only = replace(
        CLEAN, gpu_resource="", gpu_per_replica=0, termination_grace_seconds=30, **MISTAKES["hpa_and_scaledobject"]
    )
    assert [f.kind for f in examine(cpu_only)] == ["hpa_and_scaledobject"]


# Read from the pod template: the doctor says what the template lacks, not only what it caused.
READ = replace(CLEAN, tolerates_gpu_taint=True, spreads_across_nodes=True, has_pre_stop=True, tainted_gpu_nodes=3)


def test_a_clean_template_on_tainted_nodes_has_no_finding():
    assert examine(READ) == []
    assert examine(replace(READ, tensor_parallel=4, gpu_per_replica=4, spare_units=8)) == []


def test_a_template_without_the_gpu_toleration_is_found_before_any_pod_waits():
    found = examine(replace(READ, tolerates_gpu_taint=False))
    assert [f.kind for f in found] == ["missing_gpu_toleration"]
    assert "3 GPU nodes of the cluster carry" in found[0].message
    assert examine(replace(READ, tolerates_gpu_taint=False, tainted_gpu_nodes=0)) == []  # no taint, no need


def test_a_tensor_parallel_template_without_anti_affinity_is_found_before_replicas_share_a_node():
    found = examine(replace(READ, tensor_parallel=4, gpu_per_replica=4, spare_units=8, spreads_across_nodes=False))
    assert [f.kind for f in found] == ["tp_without_anti_affinity"]
    assert examine(replace(READ, spreads_across_nodes=False)) == []  # one GPU a replica: no tensor parallelism


def test_a_short_grace_is_fine_with_a_pre_stop_hook_that_outlasts_generations():
    assert examine(replace(READ, termination_grace_seconds=120)) == []  # preStop, p95 40 s
    found = examine(replace(READ, termination_grace_seconds=120, has_pre_stop=False))
    assert [f.kind for f in found] == ["termination_grace_short"]
    assert "no preStop hook" in found[0].message
    found = examine(replace(READ, termination_grace_seconds=30))  # a hook, but shorter than generations
    assert [f.kind for f in found] == ["termination_grace_short"]


def test_the_longest_generations_are_the_end_to_end_p99_where_known():
    found = examine(replace(READ, termination_grace_seconds=600, e2e_p95_seconds=500.0, e2e_p99_seconds=900.0))
    assert [f.kind for f in found] == ["termination_grace_short"]
    assert "end-to-end p99 900 s" in found[0].message and found[0].evidence["e2e_p99_seconds"] == 900.0
    assert examine(replace(READ, termination_grace_seconds=600, e2e_p95_seconds=500.0, e2e_p99_seconds=580.0)) == []
