"""End to end: the sync stores what it saw and bills nothing; costing's own periodic task then
bills each cluster up to its last good sync, from what the sync stored."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum

from costing import pricing, selectors
from costing.models import CostSample, CostWatermark
from costing.tasks import accrue_all_clusters
from fleet import sync
from fleet.backends.base import BackendError
from fleet.models import Cluster
from fleet.services import cluster_refresh
from tests.costing.factories import InstancePriceFactory
from tests.fleet.snapshots import T0, StaticBackend, small_cluster, without_pod

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(monkeypatch):
    """A Kubernetes cluster (no Prometheus) served from hand-built snapshots (`cluster.backend_served`)."""
    InstancePriceFactory()  # p4de.24xlarge $27.44705/h
    cluster = Cluster.objects.create(
        name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path="/x", region="us-east-1"
    )
    backend = StaticBackend(small_cluster())
    monkeypatch.setattr(sync, "cluster_backend", lambda c: backend)
    cluster.backend_served = backend
    return cluster


def sync_at(cluster, at, snapshot=None, *, error: str = ""):
    """A sync at `at` (of `snapshot`, or failing with `error`), as the beat would run it."""
    backend = cluster.backend_served
    backend.snapshot_value = replace(snapshot or backend.snapshot_value, taken_at=at)
    backend.error = BackendError(error) if error else None
    with time_machine.travel(at, tick=False):
        return cluster_refresh(cluster=Cluster.objects.get(id=cluster.id))


def accrue_at(at):
    with time_machine.travel(at, tick=False):
        accrue_all_clusters.delay()


def usd():
    return CostSample.objects.aggregate(usd=Sum("usd"))["usd"]


def test_the_sync_bills_nothing(cluster):
    assert sync_at(cluster, T0).ok
    assert sync_at(cluster, T0 + timedelta(minutes=15)).ok

    assert not CostSample.objects.exists()
    assert not CostWatermark.objects.exists()  # accrual never ran: not even its first call


def test_the_task_bills_each_span_at_what_the_sync_stored(cluster):
    snapshot = small_cluster()
    for minutes, shown in ((0, snapshot), (15, snapshot), (30, without_pod(snapshot, "batch-eval-xyz"))):
        assert sync_at(cluster, T0 + timedelta(minutes=minutes), shown).ok
        accrue_at(T0 + timedelta(minutes=minutes, seconds=20))

    start, end = T0, T0 + timedelta(minutes=30)
    rows = {r.key: r for r in selectors.cost_by_group(group_by="deployment", start=start, end=end)}
    # Two p4de nodes for half an hour.
    assert sum(r.usd for r in rows.values()) == Decimal("27.44705")
    assert rows["llm/llama-70b"].usd_decimal == Decimal("6.86176250")  # 4 GPUs x 0.5 h
    assert rows["search/mistral"].usd_decimal == Decimal("1.47037768")  # 2 x 3g.40gb = 6/7 GPU x 0.5 h
    # The Job pod held a GPU for the first quarter hour, then left it unallocated.
    assert rows["llm/(no deployment)"].usd_decimal == Decimal("0.85772031")  # 1 GPU x 0.25 h
    # gpu-a: 3 free GPUs for 0.25 h, then 4; gpu-b: 8 - 6/7 GPUs for 0.5 h. 1.75 + 3.5714286 GPU-hours.
    assert pricing.quantize(rows["(unallocated)"].gpu_hours, 6) == Decimal("5.321429")
    # No Prometheus: nothing is counted idle except capacity no pod holds.
    assert not CostSample.objects.filter(kind="pod", idle=True).exists()
    assert CostSample.objects.filter(kind="pod").aggregate(m=Sum("metered_gpu_hours"))["m"] == 0


def test_it_bills_up_to_the_last_good_sync_never_past_it(cluster):
    assert sync_at(cluster, T0).ok
    accrue_at(T0 + timedelta(seconds=5))
    assert sync_at(cluster, T0 + timedelta(minutes=10)).ok
    assert not sync_at(cluster, T0 + timedelta(minutes=20), error="refused").ok

    accrue_at(T0 + timedelta(minutes=25))
    assert CostWatermark.objects.get(cluster=cluster).accrued_until == T0 + timedelta(minutes=10)
    gpu_hours = CostSample.objects.aggregate(g=Sum("gpu_hours"))["g"]
    assert pricing.quantize(gpu_hours, 6) == pricing.quantize(Decimal(16 * 10) / 60, 6)  # 16 GPUs, 10 min
    billed = usd()

    accrue_at(T0 + timedelta(minutes=28))  # syncs still failing: nothing observed, nothing billed
    assert usd() == billed
    assert sync_at(cluster, T0 + timedelta(minutes=30)).ok
    accrue_at(T0 + timedelta(minutes=30, seconds=10))
    assert CostWatermark.objects.get(cluster=cluster).accrued_until == T0 + timedelta(minutes=30)
    assert usd() == Decimal("27.44705")  # two p4de nodes ($27.44705/h each) for half an hour, no more


def test_running_it_again_or_after_a_crash_bills_nothing_twice(cluster, monkeypatch):
    assert sync_at(cluster, T0).ok
    accrue_at(T0 + timedelta(seconds=5))
    assert sync_at(cluster, T0 + timedelta(minutes=15)).ok

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed mid-write")

    with monkeypatch.context() as m:  # dies after claiming the span, before its samples are written
        m.setattr(CostSample.objects, "bulk_create", crash)
        with pytest.raises(RuntimeError):
            accrue_at(T0 + timedelta(minutes=15, seconds=5))
    assert CostWatermark.objects.get(cluster=cluster).accrued_until == T0  # the claim was rolled back
    assert not CostSample.objects.exists()

    accrue_at(T0 + timedelta(minutes=15, seconds=10))  # the redelivered task
    accrue_at(T0 + timedelta(minutes=15, seconds=20))  # and the next beat tick, same last good sync
    assert usd() == Decimal("27.44705") / 2  # two p4de nodes for a quarter hour, once


def test_the_sync_never_waits_for_prometheus_the_bill_does(cluster, monkeypatch):
    asked = []

    class RecordingPrometheus:
        """Answers nothing, and notes who asked: a slow Prometheus would make each of them wait."""

        last_error = None

        def deployment_metrics(self, refs):
            asked.append("current metrics")
            return {}

        def token_increase(self, refs, start, end):
            asked.append("token counters")
            return {}

    monkeypatch.setattr("fleet.backends.registry.metrics_backend", lambda c: RecordingPrometheus())
    assert sync_at(cluster, T0).ok
    accrue_at(T0 + timedelta(seconds=5))  # the first accrual only sets the watermark
    assert sync_at(cluster, T0 + timedelta(minutes=15)).ok
    assert asked == []

    accrue_at(T0 + timedelta(minutes=15, seconds=5))
    assert sorted(set(asked)) == ["current metrics", "token counters"]
