"""Repartitioning a node of the simulated cluster: the demo world's node is cordoned, relabelled,
reconfigures for a while, comes back with the new slices, and pods can land on it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core.errors import ApplicationError
from fleet.backends.registry import cluster_backend
from fleet.models import Cluster, GpuNode
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from mig.apply import mig_application_request, mig_application_run
from mig.models import MigPlan
from mig.services import mig_application_start
from scaling.services import Actor
from simulator import demo_world

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
ALICE = Actor(label="alice", key="user:1")
EMPTY = "ip-10-0-76-153.ec2.internal"  # an A100 node of the demo world holding no pod
EMBED = "ip-10-0-230-122.ec2.internal"  # every replica of team-search/bge-embed runs here


@pytest.fixture
def sim(db):
    cluster = Cluster.objects.create(
        name="demo", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod", "team-search"]
    )
    with time_machine.travel(NOON, tick=False):
        DbWorldStore(cluster).replace(demo_world(seed=3, now=NOON, warmup_hours=0.25), seed=3)
        assert cluster_sync(cluster=cluster).ok
    node = GpuNode.objects.get(cluster=cluster, name=EMPTY)
    plan = MigPlan.objects.create(
        cluster=cluster,
        node_pool=node.node_pool,
        actor_label="alice",
        nodes=[
            {
                "node": EMPTY,
                "from_config": "",
                "to_config": "all-3g.40gb",
                "devices_before": {},
                "devices_after": {"3g.40gb": 16},
                "freed": False,
                "gpu_count": 8,
            },
            {
                "node": EMBED,
                "from_config": "all-1g.10gb",
                "to_config": "all-balanced",
                "devices_before": {"1g.10gb": 56},
                "devices_after": {"1g.10gb": 16, "2g.20gb": 8, "3g.40gb": 8},
                "freed": False,
                "gpu_count": 8,
            },
        ],
    )
    return cluster, plan


def test_a_simulated_node_is_repartitioned_step_by_step(sim):
    cluster, plan = sim
    with time_machine.travel(NOON + timedelta(seconds=10), tick=False):
        application = mig_application_request(plan=plan, node_name=EMPTY, reason="demo", actor=ALICE)
    now, seen = NOON + timedelta(seconds=10), []
    for _ in range(40):
        with time_machine.travel(now, tick=False):
            result = mig_application_run(application_id=application.id, backend=cluster_backend(cluster), now=now)
            seen.append(DbWorldStore(cluster).load().node(EMPTY).status)
        if result.wait_seconds is None:
            break
        now += timedelta(seconds=15)
    application.refresh_from_db()

    assert application.status == "succeeded", application.error
    assert "reconfiguring MIG" in seen  # the world's mig-manager took its time
    node = DbWorldStore(cluster).load().node(EMPTY)
    assert (node.mig_layout, node.unschedulable) == ("all-3g.40gb", False)
    assert application.steps[-1]["detail"] == "advertises 16 x 3g.40gb"
    events = [reason for _, reason, obj, _ in DbWorldStore(cluster).load().events if obj == f"Node/{EMPTY}"]
    assert events[-4:] == ["NodeNotSchedulable", "MigReconfigure", "NodeReady", "NodeSchedulable"]


def test_a_node_holding_every_replica_of_a_deployment_is_not_drained(sim):
    cluster, plan = sim
    with pytest.raises(ApplicationError, match="would leave team-search/bge-embed with 0 ready replicas"):
        mig_application_request(plan=plan, node_name=EMBED, reason="demo", actor=ALICE)


def test_starting_it_sends_it_to_a_worker_which_runs_until_it_must_wait(sim, run_on_commit):
    cluster, plan = sim
    with time_machine.travel(NOON + timedelta(seconds=10), tick=False):
        application = run_on_commit(mig_application_start, plan=plan, node_name=EMPTY, reason="demo", actor=ALICE)
    application.refresh_from_db()
    assert application.status == "pending"  # handed back to wait for the reconfiguration
    assert [s["status"] for s in application.steps] == ["done", "done", "done", "running", "pending", "pending"]
    assert DbWorldStore(cluster).load().node(EMPTY).mig_layout == "all-3g.40gb"
