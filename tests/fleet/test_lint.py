from dataclasses import replace

import pytest

from fleet.autoscalers import ReplicaOwnerKind
from fleet.lint import DeploymentShape, effective_max_unavailable, lint_deployment
from tests.factories import autoscaler_facts

SO, HP = ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA

SAFE = DeploymentShape(
    gpu_resource="nvidia.com/gpu",
    gpu_per_replica=1,
    replicas_desired=2,
    liveness_initial_delay_seconds=300,
    termination_grace_seconds=600,
    max_unavailable="0",
    autoscalers=(autoscaler_facts(SO, "llama", metric="vllm:num_requests_waiting > 5"),),
)


def codes(**changes) -> list[str]:
    from dataclasses import replace

    return [f.code for f in lint_deployment(replace(SAFE, **changes))]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        # liveness probe before the weights are loaded
        ({"liveness_initial_delay_seconds": 30}, ["liveness-before-cold-start"]),
        ({"liveness_initial_delay_seconds": 119}, ["liveness-before-cold-start"]),
        ({"liveness_initial_delay_seconds": 120}, []),
        ({"liveness_initial_delay_seconds": None}, []),  # no probe, or not known: nothing to say
        # Kubernetes' default 30 s grace cuts generations off
        ({"termination_grace_seconds": 30}, ["short-termination-grace"]),
        ({"termination_grace_seconds": 600}, []),
        ({"termination_grace_seconds": None}, []),
        # maxUnavailable on a small GPU deployment
        ({"max_unavailable": "1"}, ["rollout-drops-capacity"]),
        ({"max_unavailable": "1", "replicas_desired": 1}, ["rollout-drops-capacity"]),
        ({"max_unavailable": "1", "replicas_desired": 3}, []),
        ({"max_unavailable": "25%"}, []),  # 25% of 2 rounds down to 0
        ({"max_unavailable": "50%"}, ["rollout-drops-capacity"]),
        ({"max_unavailable": ""}, []),
        # CPU-based autoscaling of GPU pods
        ({"autoscalers": (autoscaler_facts(HP, "web", metric="cpu utilization 70%"),)}, ["cpu-autoscaler-on-gpu"]),
        ({"autoscalers": (autoscaler_facts(HP, "web", metric="Resource CPU 80%"),)}, ["cpu-autoscaler-on-gpu"]),
        ({"autoscalers": (autoscaler_facts(HP, "gpu", metric="DCGM_FI_DEV_GPU_UTIL > 80"),)}, []),
        # HPA and ScaledObject on one target
        (
            {
                "autoscalers": (
                    autoscaler_facts(SO, "llama", metric="queue"),
                    autoscaler_facts(HP, "llama-hpa", metric="queue"),
                )
            },
            ["autoscaler-conflict"],
        ),
        # ... but KEDA's own HPA is part of its ScaledObject
        (
            {
                "autoscalers": (
                    autoscaler_facts(SO, "llama", metric="queue"),
                    autoscaler_facts(HP, "keda-hpa-llama", metric="queue", owned_by_scaledobject="llama"),
                )
            },
            [],
        ),
        # a deployment without GPUs is none of our business, except for conflicting autoscalers
        (
            {
                "gpu_resource": "",
                "gpu_per_replica": 0,
                "liveness_initial_delay_seconds": 5,
                "termination_grace_seconds": 30,
                "max_unavailable": "1",
                "autoscalers": (autoscaler_facts(HP, "a", metric="cpu"), autoscaler_facts(HP, "b", metric="cpu")),
            },
            ["autoscaler-conflict"],
        ),
        # everything wrong at once
        (
            {
                "liveness_initial_delay_seconds": 30,
                "termination_grace_seconds": 30,
                "max_unavailable": "1",
                "autoscalers": (autoscaler_facts(SO, "q", metric="queue"), autoscaler_facts(HP, "c", metric="cpu 70%")),
            },
            [
                "autoscaler-conflict",
                "liveness-before-cold-start",
                "short-termination-grace",
                "rollout-drops-capacity",
                "cpu-autoscaler-on-gpu",
            ],
        ),
    ],
)
def test_it_flags_the_known_traps(changes, expected):
    assert codes(**changes) == expected


def test_it_explains_each_finding_with_the_numbers():
    from dataclasses import replace

    findings = lint_deployment(replace(SAFE, liveness_initial_delay_seconds=30, termination_grace_seconds=30))

    assert findings[0].message.startswith("liveness probe starts after 30 s, before a 2-min cold start")
    assert findings[1].message.startswith("terminationGracePeriodSeconds is 30 s")


def test_it_names_both_autoscalers_of_a_conflict():
    shape = DeploymentShape(autoscalers=(autoscaler_facts(SO, "llama"), autoscaler_facts(HP, "llama-hpa")))

    (finding,) = lint_deployment(shape)

    assert finding.severity == "error"
    assert finding.message.startswith("conflict: ScaledObject llama, HPA llama-hpa")


@pytest.mark.parametrize(
    ("value", "replicas", "expected"),
    [("1", 2, 1), ("0", 2, 0), ("25%", 4, 1), ("25%", 3, 0), ("100%", 2, 2), ("", 2, None), ("lots", 2, None)],
)
def test_it_rounds_a_percentage_max_unavailable_down_like_kubernetes(value, replicas, expected):
    assert effective_max_unavailable(value, replicas) == expected


def test_it_asks_for_twice_the_measured_load_time_when_there_is_history():
    shape = replace(SAFE, liveness_initial_delay_seconds=300)

    assert lint_deployment(shape, load_p95_seconds=149.4) == []
    [finding] = lint_deployment(shape, load_p95_seconds=235.0)

    assert finding.code == "liveness-before-cold-start"
    assert "235 s" in finding.message and "at least 470 s" in finding.message


def test_it_keeps_the_fixed_floor_without_measured_history():
    shape = replace(SAFE, liveness_initial_delay_seconds=100)

    assert [f.code for f in lint_deployment(shape, load_p95_seconds=None)] == ["liveness-before-cold-start"]
