"""Who owns a Deployment's replicas: the one answer every page, API, lint rule and write path uses."""

from __future__ import annotations

import pytest

from fleet.autoscalers import ReplicaOwnerKind, api_kind, replica_owner
from tests.factories import autoscaler_facts

SO = ReplicaOwnerKind.SCALEDOBJECT
HPA = ReplicaOwnerKind.HPA
KEDA = autoscaler_facts(SO, "llama", 1, 8, metric="vllm:num_requests_waiting > 5")
KEDA_HPA = autoscaler_facts(HPA, "keda-hpa-llama", 1, 8, owned_by_scaledobject="llama")
PAUSED = autoscaler_facts(SO, "llama", 1, 8, paused_replicas=3)
PAUSED_ALL = autoscaler_facts(SO, "llama", 1, 8, paused=True)
PLAIN_HPA = autoscaler_facts(HPA, "llama-gpu", 1, 4, metric="DCGM_FI_DEV_GPU_UTIL 80%")
CPU_HPA = autoscaler_facts(HPA, "llama-cpu", 2, 6, metric="cpu utilization 70%")


@pytest.mark.parametrize(
    ("case", "autoscalers", "kind", "name", "autoscaler", "conflicts", "paused"),
    [
        ("HPA only", [PLAIN_HPA], HPA, "llama-gpu", PLAIN_HPA, (), False),
        ("KEDA ScaledObject", [KEDA], SO, "llama", KEDA, (), False),
        ("ScaledObject with its own HPA", [KEDA_HPA, KEDA], SO, "llama", KEDA, (), False),
        ("paused ScaledObject (pinned)", [PAUSED], SO, "llama", PAUSED, (), True),
        ("paused ScaledObject", [PAUSED_ALL], SO, "llama", PAUSED_ALL, (), True),
        ("both", [PLAIN_HPA, KEDA_HPA, KEDA], ReplicaOwnerKind.CONFLICT, "", None, (KEDA, PLAIN_HPA), False),
        ("two HPAs", [PLAIN_HPA, CPU_HPA], ReplicaOwnerKind.CONFLICT, "", None, (CPU_HPA, PLAIN_HPA), False),
        ("none", [], ReplicaOwnerKind.DEPLOYMENT, "llama", None, (), False),
        # KEDA's own HPA whose ScaledObject is gone claims nothing: the Deployment is sized by hand.
        ("manual", [KEDA_HPA], ReplicaOwnerKind.DEPLOYMENT, "llama", None, (), False),
    ],
)
def test_it_names_the_one_owner_of_the_replicas(case, autoscalers, kind, name, autoscaler, conflicts, paused):
    owner = replica_owner("llama", autoscalers)

    assert (owner.kind, owner.name, owner.autoscaler, owner.conflicts, owner.paused) == (
        kind,
        name,
        autoscaler,
        conflicts,
        paused,
    ), case
    assert owner.autoscaled is (kind in (SO, HPA))
    assert owner.claimants == (conflicts or ((autoscaler,) if autoscaler else ()))


def test_a_conflict_names_every_claimant_scaledobjects_first():
    owner = replica_owner("llama", [CPU_HPA, PLAIN_HPA, KEDA])

    assert owner.conflict_names == "ScaledObject llama and HPA llama-cpu and HPA llama-gpu"
    assert [label for label, _ in owner.labelled_conflicts] == [
        "KEDA ScaledObject",
        "HorizontalPodAutoscaler",
        "HorizontalPodAutoscaler",
    ]


@pytest.mark.parametrize(
    ("kind", "api"),
    [(SO, "keda"), (HPA, "hpa"), (ReplicaOwnerKind.DEPLOYMENT, "none"), (ReplicaOwnerKind.CONFLICT, "conflict")],
)
def test_the_api_keeps_its_documented_names(kind, api):
    assert api_kind(kind) == api


def test_an_unknown_kind_is_refused_not_guessed():
    with pytest.raises(ValueError, match="keda"):
        replica_owner("llama", [autoscaler_facts("keda", "llama")])
