"""Accrual: the cost of what ran between a cluster's watermark and each sync."""

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from costing import pricing, services
from costing.models import CostSample, CostWatermark
from costing.services import cost_accrue
from fleet.backends.base import DeploymentMetrics
from fleet.models import GpuNode, Pod
from tests.costing.conftest import FakeMetrics, busy
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db

L40S = "NVIDIA-L40S"
DAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
CENT = Decimal("0.01")


def usd(qs) -> Decimal:
    return (qs.aggregate(total=Sum("usd"))["total"] or Decimal(0)).quantize(CENT)


@pytest.fixture
def world():
    """Three nodes, three deployments, one Pending pod, with hand-computable prices.

    a100-a   p4de.24xlarge on-demand, $27.44705/h, 8 GPUs: llama holds 4; a Pending pod holds none
    a100-mig p4de.24xlarge on-demand, all-3g.40gb: embed holds one 3g.40gb slice (3/7 of a GPU)
    l40s     g6e.12xlarge spot, $4.4325/h (on-demand $10.49264/h), 4 GPUs: qwen holds all 4
    """
    cluster = ClusterFactory(name="prod", region="us-east-1")
    InstancePriceFactory()
    InstancePriceFactory(instance_type="g6e.12xlarge", usd_per_hour=Decimal("10.49264"), gpu_count=4)
    InstancePriceFactory(
        instance_type="g6e.12xlarge", capacity_type="spot", usd_per_hour=Decimal("4.4325"), gpu_count=4
    )
    node_a = GpuNodeFactory(cluster=cluster, name="a100-a")
    node_m = GpuNodeFactory(cluster=cluster, name="a100-mig", mig=True)
    node_s = GpuNodeFactory(
        cluster=cluster,
        name="l40s",
        instance_type="g6e.12xlarge",
        capacity_type="spot",
        gpu_product=L40S,
        gpu_count=4,
        capacity={"nvidia.com/gpu": 4},
    )
    llama = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", gpu_per_replica=4)
    embed = ModelDeploymentFactory(
        cluster=cluster, namespace="search", name="embed", gpu_resource="nvidia.com/mig-3g.40gb", gpu_per_replica=1
    )
    qwen = ModelDeploymentFactory(cluster=cluster, namespace="research", name="qwen", gpu_per_replica=4)
    PodFactory(deployment=llama, node=node_a, name="llama-0")
    PodFactory(deployment=embed, node=node_m, name="embed-0")
    PodFactory(deployment=qwen, node=node_s, name="qwen-0")
    PodFactory(deployment=llama, node=node_a, name="llama-1", phase="Pending", ready=False)
    metrics = FakeMetrics(
        {
            "llama": busy(utilization=0.8, generation=100.0, prompt=50.0),
            "embed": DeploymentMetrics(
                gpu_utilization=None, prompt_tokens_per_second=200.0, generation_tokens_per_second=0.0
            ),
            "qwen": busy(utilization=0.05, generation=1.0, prompt=1.0),
        }
    )
    return {
        "cluster": cluster,
        "metrics": metrics,
        "llama": llama,
        "embed": embed,
        "qwen": qwen,
        "nodes": (node_a, node_m, node_s),
    }


def run_syncs(cluster, metrics, *, start, count, every=timedelta(minutes=15)):
    """`count` accruals `every` apart from `start`, the clock frozen at each like a real sync."""
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(count):
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=metrics)
            traveller.shift(every)


def test_it_only_sets_the_watermark_on_the_first_call(world):
    written = cost_accrue(cluster=world["cluster"], now=DAY, metrics=world["metrics"])

    assert written == 0
    assert not CostSample.objects.exists()
    assert CostWatermark.objects.get(cluster=world["cluster"]).accrued_until == DAY


def test_it_accrues_a_simulated_day_to_the_hand_computed_cent(world):
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=97)  # 00:00 (watermark), then 96 x 15 min

    everything = CostSample.objects.all()
    # Nodes are billed whole: 2 x p4de on-demand + 1 x g6e.12xlarge spot, 24 h.
    assert usd(everything) == Decimal("1423.84")  # (27.44705 x 2 + 4.4325) x 24 = 1423.8384
    assert usd(everything.filter(deployment=world["llama"])) == Decimal("329.36")  # 27.44705 / 8 x 4 x 24
    assert usd(everything.filter(deployment=world["embed"])) == Decimal("35.29")  # 27.44705 / 8 x 3/7 x 24
    assert usd(everything.filter(deployment=world["qwen"])) == Decimal("106.38")  # 4.4325 x 24
    # Whatever no pod holds is waste, billed to the node as unallocated (the Pending pod holds nothing).
    assert usd(everything.filter(kind="unallocated")) == Decimal("952.80")  # 1423.8384 - 329.3646 - 35.28906 - 106.38
    gpu_hours = everything.aggregate(g=Sum("gpu_hours"))["g"]
    assert gpu_hours.quantize(Decimal("0.0001")) == Decimal("480.0000")  # 20 GPUs x 24 h
    # One row per holder per hour, however many syncs.
    assert everything.filter(pod__name="llama-0").count() == 24
    assert not everything.filter(pod__name="llama-1").exists()
    assert CostWatermark.objects.get().accrued_until == DAY + timedelta(days=1)


def test_it_counts_tokens_idle_gpus_and_spot_savings_over_the_day(world):
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=97)

    llama = CostSample.objects.filter(deployment=world["llama"]).aggregate(
        gen=Sum("generation_tokens"),
        prompt=Sum("prompt_tokens"),
        idle=Sum("idle_gpu_hours"),
        busy=Sum("busy_gpu_hours"),
        metered=Sum("metered_gpu_hours"),
    )
    assert llama["gen"] == 100 * 86_400
    assert llama["prompt"] == 50 * 86_400
    assert llama["idle"] == 0
    assert llama["busy"] / llama["metered"] == Decimal("0.8")
    # qwen ran at 5 % utilization: all its GPU-hours are idle.
    assert CostSample.objects.filter(deployment=world["qwen"]).aggregate(i=Sum("idle_gpu_hours"))["i"] == 96
    # The embedding model generates nothing but serves prompts, and has no utilization: not idle.
    embed = CostSample.objects.filter(deployment=world["embed"])
    assert not embed.filter(idle=True).exists()
    assert embed.aggregate(p=Sum("prompt_tokens"))["p"] == 200 * 86_400
    spot = CostSample.objects.filter(priced_as="spot").aggregate(od=Sum("on_demand_usd"), usd=Sum("usd"))
    assert (spot["od"] - spot["usd"]).quantize(CENT) == Decimal("145.44")  # (10.49264 - 4.4325) x 24


def test_it_accrues_nothing_twice_for_a_duplicate_call(world):
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)
    before = usd(CostSample.objects.all())
    rows = CostSample.objects.count()

    again = cost_accrue(cluster=world["cluster"], now=DAY + timedelta(hours=1), metrics=world["metrics"])
    late = cost_accrue(cluster=world["cluster"], now=DAY + timedelta(minutes=30), metrics=world["metrics"])

    assert again == late == 0
    assert usd(CostSample.objects.all()) == before == Decimal("59.33")  # 59.3266 x 1 h
    assert CostSample.objects.count() == rows


def test_it_walks_away_when_another_worker_claimed_the_span(world, monkeypatch):
    cost_accrue(cluster=world["cluster"], now=DAY, metrics=world["metrics"])
    real_holders = services._holders

    def racing_holders(cluster, metrics):
        holders = real_holders(cluster, metrics)
        # Another worker finishes the same span while this one is reading state.
        CostWatermark.objects.filter(cluster=cluster).update(accrued_until=DAY + timedelta(minutes=15))
        return holders

    monkeypatch.setattr(services, "_holders", racing_holders)
    written = cost_accrue(cluster=world["cluster"], now=DAY + timedelta(minutes=15), metrics=world["metrics"])

    assert written == 0
    assert not CostSample.objects.exists()


def test_it_splits_the_interval_where_a_price_changes(world):
    InstancePriceFactory(usd_per_hour=Decimal("30.00"), effective_from=date(2026, 3, 3))
    start = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    cost_accrue(cluster=world["cluster"], now=start, metrics=world["metrics"])
    cost_accrue(cluster=world["cluster"], now=start + timedelta(hours=1), metrics=world["metrics"])

    llama = CostSample.objects.filter(deployment=world["llama"]).order_by("start")
    # Half an hour at 27.44705 / 2, half an hour at 30.00 / 2.
    assert [r.usd_per_hour for r in llama] == [Decimal("13.7235250000"), Decimal("15.0000000000")]
    assert usd(llama) == Decimal("14.36")  # 6.86176250 + 7.5


def test_it_bills_a_pod_that_moved_nodes_at_each_nodes_price(world):
    node_a, _, _ = world["nodes"]
    cheap = GpuNodeFactory(
        cluster=world["cluster"],
        name="l40s-od",
        instance_type="g6e.12xlarge",
        gpu_product=L40S,
        gpu_count=4,
        capacity={"nvidia.com/gpu": 4},
    )
    pod = Pod.objects.get(name="llama-0")
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)
    Pod.objects.filter(id=pod.id).update(node=cheap)  # rescheduled: the next sync sees it there
    run_syncs(world["cluster"], world["metrics"], start=DAY + timedelta(hours=1, minutes=15), count=4)

    rows = CostSample.objects.filter(pod=pod)
    assert usd(rows.filter(node=node_a)) == Decimal("13.72")  # 1 h x 4 A100s
    assert usd(rows.filter(node=cheap)) == Decimal("10.49")  # 1 h x the whole g6e.12xlarge
    assert usd(rows) == Decimal("24.22")


def test_it_records_gpu_hours_without_a_price_rather_than_zero(world, caplog):
    mystery = GpuNodeFactory(cluster=world["cluster"], name="mystery", instance_type="p9.mega")
    PodFactory(deployment=world["llama"], node=mystery, name="llama-2")
    caplog.set_level(logging.WARNING, logger="costing.services")

    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)

    rows = CostSample.objects.filter(instance_type=mystery.instance_type)  # its pod's GPUs and its spare ones
    assert rows.exists()
    assert not rows.filter(usd__isnull=False).exists()
    assert rows.aggregate(g=Sum("gpu_hours"))["g"] == 8  # 8 GPUs x 1 h, counted but not costed
    assert "no price for p9.mega in us-east-1" in caplog.text


def test_it_prices_a_spot_node_without_a_spot_price_at_on_demand(world):
    InstancePriceFactory(instance_type="g5.48xlarge", usd_per_hour=Decimal("16.288"))
    node = GpuNodeFactory(cluster=world["cluster"], name="a10g-spot", instance_type="g5.48xlarge", capacity_type="spot")
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)

    rows = CostSample.objects.filter(instance_type=node.instance_type)  # its pool's spare GPUs of that kind
    assert set(rows.values_list("priced_as", flat=True)) == {"on-demand"}
    assert usd(rows) == Decimal("16.29")


def test_it_uses_a_clusters_negotiated_price(world):
    InstancePriceFactory(cluster=world["cluster"], usd_per_hour=Decimal("20.00"), source="EDP contract")
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)

    assert usd(CostSample.objects.filter(deployment=world["llama"])) == Decimal("10.00")  # 20 / 8 x 4 x 1 h


def test_it_caps_a_long_gap_and_says_so(world, caplog):
    caplog.set_level(logging.WARNING, logger="costing.services")
    cost_accrue(cluster=world["cluster"], now=DAY, metrics=world["metrics"])

    cost_accrue(cluster=world["cluster"], now=DAY + timedelta(hours=5), metrics=world["metrics"])

    rows = CostSample.objects.all()
    assert usd(rows) == Decimal("59.33")  # only the last hour, at the current state
    assert rows.order_by("start").first().start == DAY + timedelta(hours=4)
    assert "not accrued" in caplog.text and "prod" in caplog.text
    assert CostWatermark.objects.get().accrued_until == DAY + timedelta(hours=5)


def test_it_never_counts_gpus_idle_when_metrics_are_unavailable(world, caplog):
    caplog.set_level(logging.INFO, logger="costing.services")
    broken = FakeMetrics(error=RuntimeError("prometheus timed out"))

    run_syncs(world["cluster"], broken, start=DAY, count=5)

    pods = CostSample.objects.filter(kind="pod")
    assert pods.exists()
    assert not pods.filter(idle=True).exists()
    assert pods.aggregate(m=Sum("metered_gpu_hours"))["m"] == 0
    assert "metrics unavailable" in caplog.text and "not assessed" in caplog.text


def test_it_keeps_cost_history_when_pods_and_nodes_are_deleted(world):
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)
    total = usd(CostSample.objects.all())

    Pod.objects.all().delete()
    GpuNode.objects.all().delete()

    assert usd(CostSample.objects.all()) == total
    row = CostSample.objects.filter(pod_name="llama-0").first()
    assert (row.pod_id, row.node_id, row.node_name, row.deployment_name, row.namespace) == (
        None,
        None,
        "a100-a",
        "llama",
        "llm",
    )


def test_it_ignores_gone_nodes_and_pods(world):
    node_a, _, _ = world["nodes"]
    GpuNode.objects.filter(id=node_a.id).update(gone_at=DAY)
    Pod.objects.filter(node=node_a).update(gone_at=DAY)
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)

    assert not CostSample.objects.filter(node=node_a).exists()
    assert usd(CostSample.objects.all()) == Decimal("31.88")  # 27.44705 + 4.4325


def test_it_reads_the_idle_threshold_from_settings(world, settings):
    settings.SCALEDECK_IDLE_UTILIZATION_THRESHOLD = 0.9  # llama runs at 80 %
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=2)

    assert CostSample.objects.get(deployment=world["llama"]).idle is True


def test_it_asks_the_metrics_backend_once_per_accrual_for_all_deployments(world):
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=3)

    assert len(world["metrics"].asked) == 2  # the first call only sets the watermark
    refs = {(r.namespace, r.name, r.pods) for r in world["metrics"].asked[-1]}
    assert refs == {
        ("llm", "llama", ("llama-0",)),
        ("search", "embed", ("embed-0",)),
        ("research", "qwen", ("qwen-0",)),
    }


def test_it_writes_a_bounded_number_of_statements_per_accrual(world, django_assert_max_num_queries):
    for i in range(20):
        node = GpuNodeFactory(cluster=world["cluster"], name=f"extra-{i}")
        PodFactory(deployment=world["llama"], node=node, name=f"llama-x{i}")
    cost_accrue(cluster=world["cluster"], now=DAY, metrics=world["metrics"])
    cost_accrue(cluster=world["cluster"], now=DAY + timedelta(minutes=15), metrics=world["metrics"])

    with django_assert_max_num_queries(12):
        cost_accrue(cluster=world["cluster"], now=DAY + timedelta(minutes=30), metrics=world["metrics"])


def test_it_waits_for_a_minute_of_history_before_writing(world):
    cost_accrue(cluster=world["cluster"], now=DAY, metrics=world["metrics"])

    assert cost_accrue(cluster=world["cluster"], now=DAY + timedelta(seconds=15), metrics=world["metrics"]) == 0
    assert cost_accrue(cluster=world["cluster"], now=DAY + timedelta(seconds=75), metrics=world["metrics"]) > 0

    # Nothing lost: the 75 seconds are accrued in one go.
    assert CostSample.objects.get(pod__name="llama-0").end == DAY + timedelta(seconds=75)


def test_it_bills_spare_gpus_to_their_node_pool_one_row_per_kind_of_node(world):
    loner = GpuNodeFactory(cluster=world["cluster"], name="hand-made", node_pool=None)
    run_syncs(world["cluster"], world["metrics"], start=DAY, count=5)

    spare = CostSample.objects.filter(kind="unallocated")
    by_name = {name: spare.filter(node_name=name) for name in spare.values_list("node_name", flat=True)}
    assert set(by_name) == {"nodepool/a100", "hand-made"}
    # Pool a100: 4 spare A100s of a100-a and 8 of a100-mig less embed's 3g slice (3/7), one p4de row;
    # the l40s node is in the pool too, and full. The hour is one row, extended at every sync.
    pool = by_name["nodepool/a100"].get()
    assert (pool.node_id, pool.instance_type) == (None, "p4de.24xlarge")
    assert pool.gpus == pricing.quantize(Fraction(4) + 8 - Fraction(3, 7))
    assert by_name["hand-made"].get().node_id == loner.id  # no pool to name
