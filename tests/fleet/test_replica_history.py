"""ScaleDeck's own record of desired/ready replicas over time (where kube-state-metrics is missing)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.models import Cluster, ModelDeployment, ReplicaChange
from fleet.replica_history import REPLICA_HISTORY_KEEP, replica_changes_record, replica_series
from fleet.services import cluster_refresh
from tests.factories import ClusterFactory, ModelDeploymentFactory
from tests.fleet.snapshots import StaticBackend, small_cluster

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


def test_it_records_each_deployment_once_then_only_when_a_count_changes():
    cluster = ClusterFactory()
    llama = ModelDeploymentFactory(cluster=cluster, name="llama", replicas_desired=4, replicas_ready=3)
    ModelDeploymentFactory(cluster=cluster, name="qwen", replicas_desired=1, replicas_ready=1)
    ModelDeploymentFactory(cluster=cluster, name="old", gone_at=NOW)
    ModelDeploymentFactory(name="elsewhere")  # another cluster

    assert replica_changes_record(cluster=cluster, at=NOW) == 2

    with CaptureQueriesContext(connection) as ctx:
        assert replica_changes_record(cluster=cluster, at=NOW + timedelta(seconds=15)) == 0
    assert writes(ctx.captured_queries) == []
    assert len(ctx.captured_queries) == 1

    ModelDeployment.objects.filter(pk=llama.pk).update(replicas_ready=4)
    assert replica_changes_record(cluster=cluster, at=NOW + timedelta(seconds=30)) == 1
    assert list(ReplicaChange.objects.filter(deployment=llama).values_list("desired", "ready")) == [(4, 3), (4, 4)]


def test_it_prunes_past_the_horizon_but_keeps_the_value_at_the_horizon():
    cluster = ClusterFactory()
    llama = ModelDeploymentFactory(cluster=cluster, replicas_desired=6, replicas_ready=6)
    old = NOW - REPLICA_HISTORY_KEEP
    for minutes, count in ((-30, 1), (-20, 2), (-10, 3)):
        ReplicaChange.objects.create(deployment=llama, at=old + timedelta(minutes=minutes), desired=count, ready=count)

    replica_changes_record(cluster=cluster, at=NOW)

    kept = list(ReplicaChange.objects.filter(deployment=llama).order_by("at").values_list("desired", flat=True))
    assert kept == [3, 6]
    desired, ready = replica_series(llama, [old, NOW])
    assert desired.values == (3.0, 6.0) and ready.values == (3.0, 6.0)


def test_it_draws_steps_from_the_changes_and_a_gap_before_the_first():
    llama = ModelDeploymentFactory()
    ReplicaChange.objects.create(deployment=llama, at=NOW - timedelta(minutes=90), desired=2, ready=1)
    ReplicaChange.objects.create(deployment=llama, at=NOW - timedelta(minutes=30), desired=2, ready=2)
    ReplicaChange.objects.create(deployment=llama, at=NOW + timedelta(minutes=1), desired=0, ready=0)
    stamps = [NOW - timedelta(minutes=m) for m in (120, 60, 30, 0)]

    with CaptureQueriesContext(connection) as ctx:
        desired, ready = replica_series(llama, stamps)

    assert len(ctx.captured_queries) == 1
    assert desired.values == (None, 2.0, 2.0, 2.0)
    assert ready.values == (None, 1.0, 2.0, 2.0)
    assert desired.unit == ready.unit == "replicas"


def test_it_is_recorded_by_every_refresh_and_nothing_when_nothing_changed(monkeypatch):
    cluster = Cluster.objects.create(name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path="/x")
    snapshot = small_cluster()
    backend = StaticBackend(snapshot)
    monkeypatch.setattr("fleet.sync.cluster_backend", lambda c: backend)

    cluster_refresh(cluster=cluster)
    first = ReplicaChange.objects.count()
    assert first == len(snapshot.deployments)
    with CaptureQueriesContext(connection) as ctx:
        cluster_refresh(cluster=cluster)
    assert [sql for sql in writes(ctx.captured_queries) if "fleet_cluster" not in sql.split("SET")[0]] == []

    backend.snapshot_value = replace(
        snapshot,
        deployments=tuple(replace(d, replicas_desired=3) if d.name == "mistral" else d for d in snapshot.deployments),
    )
    cluster_refresh(cluster=cluster)
    mistral = ReplicaChange.objects.filter(deployment__name="mistral").order_by("at", "id")
    (before,) = [d.replicas_desired for d in snapshot.deployments if d.name == "mistral"]
    assert [c.desired for c in mistral] == [before, 3]


def test_it_is_recorded_on_the_beats_turn_of_a_watched_cluster():
    # A watcher keeps the rows current; the beat skips the full sync but still records changes.
    from fleet.services import cluster_watched_refresh

    cluster = ClusterFactory(last_sync_status=Cluster.SyncStatus.OK, last_sync_ok_at=NOW)
    llama = ModelDeploymentFactory(cluster=cluster, replicas_desired=2, replicas_ready=1)

    cluster_watched_refresh(cluster=cluster)
    ModelDeployment.objects.filter(pk=llama.pk).update(replicas_ready=2)  # what the watcher writes
    cluster_watched_refresh(cluster=cluster)
    cluster_watched_refresh(cluster=cluster)

    assert list(ReplicaChange.objects.filter(deployment=llama).values_list("desired", "ready")) == [(2, 1), (2, 2)]
