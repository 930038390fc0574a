"""Scale actions against the simulated cluster: the demo world moves when ScaleDeck writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fleet.backends.base import ClusterWriter
from fleet.backends.registry import cluster_backend
from fleet.models import Cluster, ModelDeployment, NamespaceQuota
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from scaling.models import ScaleAction
from scaling.services import Actor, quota_update, scale_action_request, scaling_tick_run
from simulator import demo_world

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
ALICE = Actor(label="alice", key="user:1")


@pytest.fixture
def sim(db):
    cluster = Cluster.objects.create(
        name="demo", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod", "team-search"]
    )
    with time_machine.travel(NOON, tick=False):
        DbWorldStore(cluster).replace(demo_world(seed=3, now=NOON, warmup_hours=0.25), seed=3)
        assert cluster_sync(cluster=cluster).ok
    return cluster


def world(cluster):
    return DbWorldStore(cluster).load()


def test_the_simulated_backend_is_a_cluster_writer(sim):
    assert isinstance(cluster_backend(sim), ClusterWriter)


def test_a_floor_raises_the_simulated_scaledobject_min_and_expires_back(sim, run_on_commit):
    dep = ModelDeployment.objects.get(cluster=sim, name="llama-3-8b")
    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        action = run_on_commit(
            scale_action_request, deployment=dep, replicas=6, reason="demo", actor=ALICE, source="ui", ttl_minutes=30
        )
    action.refresh_from_db()
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert (action.target_kind, action.before, action.after) == (
        "scaledobject",
        {"min_replicas": 2},
        {"min_replicas": 6},
    )
    assert world(sim).autoscaler("llm-prod", "llama-3-8b").min_replicas == 6

    with time_machine.travel(NOON + timedelta(minutes=31), tick=False):
        run_on_commit(scaling_tick_run)
    assert world(sim).autoscaler("llm-prod", "llama-3-8b").min_replicas == 2


def test_a_deployment_without_autoscaler_is_scaled_in_the_simulated_world(sim, run_on_commit):
    dep = ModelDeployment.objects.get(cluster=sim, name="mistral-7b")
    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        action = run_on_commit(
            scale_action_request, deployment=dep, replicas=3, reason="demo", actor=ALICE, source="ui"
        )
    action.refresh_from_db()
    assert action.status == "succeeded", action.error
    assert world(sim).deployment("team-search", "mistral-7b").replicas == 3


def test_an_hpa_pin_sets_min_and_max_in_the_simulated_world(sim, run_on_commit):
    dep = ModelDeployment.objects.get(cluster=sim, name="llama-3-70b")
    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        action = run_on_commit(
            scale_action_request, deployment=dep, replicas=3, mode="pin", reason="demo", actor=ALICE, source="ui"
        )
    action.refresh_from_db()
    assert action.status == "succeeded", action.error
    hpa = world(sim).autoscaler("llm-prod", "llama-3-70b")
    assert (hpa.min_replicas, hpa.max_replicas) == (3, 3)


def test_a_quota_change_keeps_the_other_entries(sim, run_on_commit):
    quota = NamespaceQuota.objects.get(cluster=sim, namespace="team-search")
    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        action = run_on_commit(
            quota_update,
            quota=quota,
            hard={"requests.nvidia.com/mig-3g.40gb": 10},
            reason="grow",
            actor=ALICE,
            source="ui",
        )
    action.refresh_from_db()
    assert action.status == "succeeded", action.error
    assert world(sim).quota("team-search", "gpu-quota").hard == {
        "requests.nvidia.com/mig-3g.40gb": 10,
        "requests.nvidia.com/mig-1g.10gb": 14,
    }


def test_a_quota_entry_can_be_removed_on_a_simulated_cluster(sim, run_on_commit):
    quota = NamespaceQuota.objects.get(cluster=sim, namespace="team-search")
    with time_machine.travel(NOON + timedelta(seconds=30), tick=False):
        action = run_on_commit(
            quota_update,
            quota=quota,
            hard={"requests.nvidia.com/mig-1g.10gb": None},
            reason="slices retired",
            actor=ALICE,
            source="ui",
        )
    action.refresh_from_db()
    assert action.status == "succeeded", action.error
    assert world(sim).quota("team-search", "gpu-quota").hard == {"requests.nvidia.com/mig-3g.40gb": 8}


def test_the_simulated_backend_refuses_namespaces_outside_the_allow_list(sim):
    backend = cluster_backend(sim)
    state = backend.read_object("hpa", "llm-dev", "qwen-2.5-1.5b")
    from fleet.backends.base import BackendError

    with pytest.raises(BackendError, match="allow-list"):
        backend.patch_hpa("llm-dev", "qwen-2.5-1.5b", resource_version=state.resource_version, min_replicas=4)
