"""End to end: `cluster_refresh` syncs a cluster, then accrues its cost from what the sync stored."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from costing import pricing, selectors
from costing.models import CostSample
from fleet import sync
from fleet.models import Cluster
from fleet.services import cluster_refresh
from tests.costing.factories import InstancePriceFactory
from tests.fleet.snapshots import T0, StaticBackend, small_cluster, without_pod

pytestmark = pytest.mark.django_db


@pytest.fixture
def refresh(monkeypatch):
    """Refresh a Kubernetes cluster (no Prometheus) from hand-built snapshots."""
    InstancePriceFactory()  # p4de.24xlarge $27.44705/h
    cluster = Cluster.objects.create(name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path="/x",
                                     region="us-east-1")
    current = {}
    monkeypatch.setattr(sync, "cluster_backend", lambda c: StaticBackend(current["snapshot"]))

    def run(snapshot):
        current["snapshot"] = snapshot
        result = cluster_refresh(cluster=cluster)
        assert result.ok, result.error
        return result

    return run


def test_it_accrues_cost_after_each_successful_sync(refresh):
    snapshot = small_cluster()
    refresh(snapshot)
    refresh(replace(snapshot, taken_at=T0 + timedelta(minutes=15)))
    refresh(replace(without_pod(snapshot, "batch-eval-xyz"), taken_at=T0 + timedelta(minutes=30)))

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


def test_it_does_not_accrue_when_the_sync_failed(refresh, monkeypatch):
    refresh(small_cluster())
    from fleet.backends.base import BackendError

    monkeypatch.setattr(sync, "cluster_backend", lambda c: StaticBackend(error=BackendError("refused")))
    result = cluster_refresh(cluster=Cluster.objects.get(name="prod"))

    assert not result.ok
    assert not CostSample.objects.exists()
