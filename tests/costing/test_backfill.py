"""Backfill: a simulated cluster's cost history, built from its world's per-minute history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Max, Min, Sum

from core.errors import ApplicationError
from costing import pricing, selectors
from costing.backfill import cost_backfill_simulated
from costing.models import CostSample, CostWatermark
from costing.services import cost_accrue_observed
from fleet.models import Cluster, ModelDeployment
from fleet.services import cluster_refresh
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world
from simulator.mig import COMPUTE_SLICES_PER_GPU
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=3)
CENT = Decimal("0.01")
# The demo's instance types, as test prices: (instance type, capacity type) -> (USD per hour, GPUs).
PRICES = {
    ("p4de.24xlarge", "on-demand"): ("27.44705", 8),
    ("p5.48xlarge", "on-demand"): ("55.04", 8),
    ("g5.xlarge", "spot"): ("0.4886", 1),
    ("g5.xlarge", "on-demand"): ("1.006", 1),
}
DEMO_GPUS = 4 * 8 + 2 * 8 + 4 * 1  # the demo's nodes: 4 x p4de, 2 x p5, 4 x g5 (none launched in 3 h)


def seed_prices(*, without: str = "") -> None:
    for (instance_type, capacity_type), (usd, gpus) in PRICES.items():
        if instance_type != without:
            InstancePriceFactory(
                instance_type=instance_type, capacity_type=capacity_type, usd_per_hour=Decimal(usd), gpu_count=gpus
            )


def demo_cluster(*, synced_at: datetime = NOW, accrue: bool = True) -> Cluster:
    """The demo world with 3 h of history up to NOW, synced (and its first accrual run) at `synced_at`."""
    with time_machine.travel(synced_at, tick=False):
        cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED, region="us-east-1")
        DbWorldStore(cluster).replace(demo_world(seed=7, now=NOW, warmup_hours=3), seed=7)
        result = cluster_sync(cluster=cluster)
        if accrue:
            cost_accrue_observed(cluster=cluster)
    assert result.ok, result.error
    return cluster


def refresh_and_accrue(cluster: Cluster) -> bool:
    """What the beat does each turn: a sync, then (its own task) the cost up to that sync."""
    ok = cluster_refresh(cluster=cluster).ok
    cost_accrue_observed(cluster=cluster)
    return ok


def backfill(cluster: Cluster, *, at: datetime = NOW) -> int:
    with time_machine.travel(at, tick=False):
        return cost_backfill_simulated(cluster=cluster, hours=3)


def gpu_price(pool) -> Fraction:
    usd, gpus = PRICES[(pool.instance_type, pool.capacity_type)]
    return Fraction(Decimal(usd)) / gpus


def held(dep, row) -> Fraction:
    """GPUs a deployment held in a minute, from the simulator's own model: pods (in 15 s steps) x
    GPUs per pod, a MIG slice at its compute slices out of 7."""
    pods = Fraction(round(row["gpus_allocated"] / dep.gpu_equivalents_per_replica * 4), 4)
    slices = int(dep.mig_profile.split("g.")[0]) if dep.mig_profile else COMPUTE_SLICES_PER_GPU
    return pods * dep.gpu_per_replica * Fraction(slices, COMPUTE_SLICES_PER_GPU)


def expected_from_history(world) -> dict:
    """What the 3 h of history cost, summed minute by minute from the world and the test prices."""
    total = sum(
        gpu_price(pool) * minute["nodes_ready"] * pool.gpus_per_node / 60
        for pool in world.pools.values()
        for minute in world.history.pool_rows(pool.name)
    )
    by_deployment, generated, idle_gpu_hours = {}, {}, {}
    for key, dep in world.deployments.items():
        rows = world.history.rows(key)
        price = gpu_price(world.pools[dep.node_pool])
        by_deployment[key] = sum(held(dep, r) * price / 60 for r in rows)
        generated[key] = (
            rows[-1]["generation_tokens_total"]
            - rows[0]["generation_tokens_total"]
            + round(rows[0]["generation_tokens_per_second"] * 60)
        )
        idle_gpu_hours[key] = sum(held(dep, r) / 60 for r in rows if r["gpu_utilization"] < 0.10)
    return {"total": total, "deployments": by_deployment, "generated": generated, "idle": idle_gpu_hours}


def cents(value) -> Decimal:
    return pricing.quantize(value, 2)


def test_it_bills_the_history_to_the_cent_of_an_independent_sum():
    seed_prices()
    cluster = demo_cluster()

    written = backfill(cluster)

    expected = expected_from_history(DbWorldStore(cluster).load())
    assert written > 0
    total = selectors.cost_total(start=NOW - WINDOW, end=NOW)
    assert cents(total.usd) == cents(expected["total"])
    assert total.unpriced_gpu_hours == 0
    assert pricing.quantize(total.gpu_hours, 4) == DEMO_GPUS * 3  # whole nodes, every minute
    deployments = {t.key: t for t in selectors.cost_by_group(group_by="deployment", start=NOW - WINDOW, end=NOW)}
    for key, usd in expected["deployments"].items():
        assert cents(deployments[key].usd) == cents(usd), key
        assert deployments[key].tokens_generated == expected["generated"][key], key
        assert pricing.quantize(deployments[key].idle_gpu_hours, 4) == pricing.quantize(expected["idle"][key], 4)
    assert deployments["(unallocated)"].idle_gpu_hours == deployments["(unallocated)"].gpu_hours > 0
    # The small model on spot A10Gs idles at night: waste, and what spot saved.
    assert deployments["llm-dev/qwen-2.5-1.5b"].idle_gpu_hours > 0
    assert deployments["llm-dev/qwen-2.5-1.5b"].spot_savings > 0


def test_its_samples_have_the_shape_live_accrual_writes():
    seed_prices()
    cluster = demo_cluster()

    backfill(cluster)

    samples = CostSample.objects.filter(cluster=cluster)
    for sample in samples:
        assert (
            sample.hour
            == pricing.hour_floor(sample.start)
            == pricing.hour_floor(sample.end - timedelta(microseconds=1))
        )
        billed = pricing.exact(sample.usd_per_hour) * pricing.hours_between(sample.start, sample.end)
        assert abs(pricing.exact(sample.usd) - billed) < Fraction(1, 10**6)
    # A steady holder is one row per hour; a MIG slice is its share of a GPU.
    mistral = samples.filter(deployment_name="mistral-7b")
    assert mistral.count() == 3
    assert {s.gpus for s in mistral} == {pricing.quantize(Fraction(6, 7))}
    assert set(samples.values_list("node_name", flat=True)) == {
        "nodepool/a100-p4de",
        "nodepool/h100-p5",
        "nodepool/g5-spot",
    }
    assert set(samples.filter(kind="pod").values_list("deployment_id", flat=True)) == set(
        ModelDeployment.objects.filter(cluster=cluster).values_list("id", flat=True)
    )
    assert set(samples.filter(instance_type="g5.xlarge").values_list("priced_as", flat=True)) == {"spot"}


def test_it_feeds_the_cost_per_million_tokens():
    seed_prices()
    cluster = demo_cluster()
    backfill(cluster)
    llama = ModelDeployment.objects.get(cluster=cluster, name="llama-3-8b")

    with time_machine.travel(NOW, tick=False):
        figures = selectors.deployment_cost_per_million_tokens(llama, hours=3)

    assert figures["window_hours"] == Decimal("3.00")
    assert figures["tokens_generated"] > 1_000_000
    assert figures["usd_per_million_generated"] == pricing.per_million(figures["usd"], figures["tokens_generated"])
    # The embedding model generates nothing: it is priced per 1M prompt tokens.
    embed = ModelDeployment.objects.get(cluster=cluster, name="bge-embed")
    with time_machine.travel(NOW, tick=False):
        figures = selectors.deployment_cost_per_million_tokens(embed, hours=3)
    assert figures["tokens_generated"] == 0 and figures["usd_per_million_generated"] is None
    assert figures["tokens_prompt"] > 1_000_000
    assert figures["usd_per_million_prompt"] == pricing.per_million(figures["usd"], figures["tokens_prompt"]) > 0


def test_it_ends_exactly_where_live_accrual_begins():
    seed_prices()
    synced_at = NOW + timedelta(seconds=30)  # half a minute the history has not closed yet
    cluster = demo_cluster(synced_at=synced_at)

    backfill(cluster, at=synced_at)
    backfilled = CostSample.objects.filter(cluster=cluster)
    assert backfilled.aggregate(last=Max("end"))["last"] == synced_at
    before = {s.id: (s.start, s.end, s.usd, s.usd_per_hour) for s in backfilled}
    later = NOW + timedelta(minutes=15)
    with time_machine.travel(later, tick=False):
        assert refresh_and_accrue(cluster)

    live = CostSample.objects.filter(cluster=cluster).exclude(id__in=list(before))
    assert live.exists()
    assert live.aggregate(first=Min("start"))["first"] == synced_at
    # History is left as it was, except that a pool's spare GPUs, keyed alike live and backfilled,
    # may go on in the same row at the same rate.
    for s in CostSample.objects.filter(id__in=list(before)):
        if (s.start, s.end, s.usd, s.usd_per_hour) != before[s.id]:
            assert s.kind == "unallocated" and s.end == later, s
            assert (s.start, s.usd_per_hour) == (before[s.id][0], before[s.id][3])
    # No gap and no overlap: every GPU of every node billed once, continuously.
    span = CostSample.objects.filter(cluster=cluster).aggregate(first=Min("start"), last=Max("end"))
    assert span["first"] == synced_at - WINDOW and span["last"] == later
    gpu_hours = CostSample.objects.filter(cluster=cluster).aggregate(g=Sum("gpu_hours"))["g"]
    assert pricing.quantize(gpu_hours, 4) == pricing.quantize(DEMO_GPUS * pricing.hours_between(*span.values()), 4)
    assert CostWatermark.objects.get(cluster=cluster).accrued_until == later


def test_it_sets_the_watermark_when_nothing_was_accrued_yet():
    seed_prices()
    cluster = demo_cluster(accrue=False)

    backfill(cluster)

    assert CostWatermark.objects.get(cluster=cluster).accrued_until == NOW
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert refresh_and_accrue(cluster)
    assert CostSample.objects.filter(cluster=cluster, start=NOW).exists()
    gpu_hours = CostSample.objects.filter(cluster=cluster).aggregate(g=Sum("gpu_hours"))["g"]
    assert gpu_hours.quantize(Decimal("0.0001")) == (DEMO_GPUS * (Decimal(3) + Decimal(5) / 60)).quantize(
        Decimal("0.0001")
    )


def test_it_is_idempotent():
    seed_prices()
    cluster = demo_cluster()
    written = backfill(cluster)
    total = selectors.cost_total(start=NOW - WINDOW, end=NOW).usd

    assert backfill(cluster) == 0
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        assert refresh_and_accrue(cluster)
    assert backfill(cluster, at=NOW + timedelta(minutes=15)) == 0

    assert CostSample.objects.filter(cluster=cluster, end__lte=NOW).count() == written
    assert selectors.cost_total(start=NOW - WINDOW, end=NOW).usd == total


def test_an_unpriced_instance_type_yields_samples_without_a_cost_not_free_ones(caplog):
    seed_prices(without="p5.48xlarge")
    cluster = demo_cluster()

    backfill(cluster)

    h100 = CostSample.objects.filter(cluster=cluster, instance_type="p5.48xlarge")
    assert h100.exists()
    assert not h100.filter(usd__isnull=False).exists()
    assert not h100.filter(usd_per_hour__isnull=False).exists()
    assert pricing.quantize(h100.aggregate(g=Sum("gpu_hours"))["g"], 4) == 16 * 3
    assert not CostSample.objects.filter(usd=0).exists()
    assert "no price for p5.48xlarge in us-east-1" in caplog.text
    totals = {t.key: t for t in selectors.cost_by_group(group_by="deployment", start=NOW - WINDOW, end=NOW)}
    assert totals["llm-prod/llama-3-70b"].priced_gpu_hours == 0
    assert totals["llm-prod/llama-3-70b"].usd_per_million_generated is None
    assert totals["llm-prod/llama-3-8b"].usd > 0


def test_it_refuses_a_cluster_that_is_not_simulated():
    with pytest.raises(ApplicationError, match="not a simulated cluster"):
        cost_backfill_simulated(cluster=ClusterFactory(name="prod"))


def test_demo_seed_backfills_a_day_once(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seeded_at = NOW + timedelta(seconds=17)  # not a whole minute: the world still gets its 24 h

    with time_machine.travel(seeded_at, tick=False):
        first, second = StringIO(), StringIO()
        call_command("demo_seed", stdout=first)
        count = CostSample.objects.count()
        call_command("demo_seed", stdout=second)

    assert f"cost history: {count} samples over 24 h" in first.getvalue()
    assert "cost history: nothing added" in second.getvalue()
    assert CostSample.objects.count() == count
    span = CostSample.objects.aggregate(first=Min("start"), last=Max("end"))
    assert span["last"] - span["first"] == timedelta(hours=24)
    assert span["last"] == CostWatermark.objects.get().accrued_until


def test_it_lists_a_pools_spare_gpus_once_backfilled_and_live():
    seed_prices()
    cluster = demo_cluster()
    backfill(cluster)
    later = NOW + timedelta(minutes=30)
    for at in (NOW + timedelta(minutes=15), later):
        with time_machine.travel(at, tick=False):
            assert refresh_and_accrue(cluster)
    assert CostSample.objects.filter(cluster=cluster, start__gte=NOW, kind="unallocated").exists()  # live ones

    window = {"start": NOW - WINDOW, "end": later}
    spare = [t for t in selectors.idle_spenders(**window, limit=50) if t.key.startswith("(unallocated)")]
    nodes = {t.key: t for t in selectors.cost_by_group(group_by="node", **window)}

    pools = {"a100-p4de", "h100-p5", "g5-spot"}
    keys = [t.key for t in spare]
    assert keys and len(keys) == len(set(keys))
    assert set(keys) <= {f"(unallocated) nodepool/{pool}" for pool in pools}  # never one node's name
    assert not CostSample.objects.filter(kind="unallocated", node__isnull=False).exists()
    unallocated = CostSample.objects.filter(kind="unallocated").aggregate(g=Sum("gpu_hours"))["g"]
    assert pricing.quantize(sum(t.idle_gpu_hours for t in spare), 4) == pricing.quantize(unallocated, 4)
    for pool in pools:  # a pool's row holds its history and its live spare GPUs
        assert nodes[f"nodepool/{pool}"].gpu_hours > 0
