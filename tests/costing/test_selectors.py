"""Selectors: current hourly cost, cost per token, accrued cost over a window; constant query counts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from costing import pricing, selectors, spend
from costing.services import cost_accrue
from tests.costing.conftest import FakeMetrics, busy
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def cluster():
    InstancePriceFactory()  # p4de.24xlarge, $27.44705/h, 8 GPUs
    return ClusterFactory(name="prod", region="us-east-1")


def deployments_with_pods(cluster, count: int, *, instance_type="p4de.24xlarge"):
    """`count` deployments, each with one running 2-GPU pod on its own node (like a real fleet page)."""
    made = []
    for i in range(count):
        node = GpuNodeFactory(cluster=cluster, name=f"node-{instance_type}-{i}", instance_type=instance_type)
        dep = ModelDeploymentFactory(cluster=cluster, name=f"model-{instance_type}-{i}", gpu_per_replica=2)
        PodFactory(deployment=dep, node=node, name=f"pod-{instance_type}-{i}")
        made.append(dep)
    return made


def test_it_prices_a_deployment_by_its_running_pods(cluster):
    node = GpuNodeFactory(cluster=cluster, name="a")
    mig_node = GpuNodeFactory(cluster=cluster, name="m", mig=True)
    llama = ModelDeploymentFactory(cluster=cluster, name="llama", gpu_per_replica=4)
    PodFactory(deployment=llama, node=node, name="llama-0")
    PodFactory(deployment=llama, node=mig_node, name="llama-1", gpu_requests={"nvidia.com/mig-3g.40gb": 1})
    PodFactory(deployment=llama, node=node, name="llama-2", phase="Pending")  # holds nothing yet
    idle = ModelDeploymentFactory(cluster=cluster, name="scaled-to-zero")

    costs = selectors.deployment_cost_per_hour([llama, idle])

    # 4 x 27.44705/8 + 3/7 x 27.44705/8 = 13.723525 + 1.47037768 = 15.19390268
    assert costs == {llama.id: Decimal("15.193903"), idle.id: Decimal("0.000000")}


def test_it_says_no_price_when_any_pod_sits_on_an_unpriced_node(cluster):
    known, unknown = (
        GpuNodeFactory(cluster=cluster, name="a"),
        GpuNodeFactory(cluster=cluster, name="x", instance_type="p9.mega"),
    )
    dep = ModelDeploymentFactory(cluster=cluster, name="llama")
    PodFactory(deployment=dep, node=known, name="llama-0")
    PodFactory(deployment=dep, node=unknown, name="llama-1")

    assert selectors.deployment_cost_per_hour([dep]) == {dep.id: None}
    assert selectors.node_cost_per_hour([known, unknown]) == {known.id: Decimal("27.447050"), unknown.id: None}
    assert selectors.unpriced_nodes() == [{"instance_type": "p9.mega", "region": "us-east-1", "nodes": 1}]


def test_it_falls_back_to_the_clusters_region_when_a_node_has_none(cluster):
    node = GpuNodeFactory(cluster=cluster, name="a", region="")

    assert selectors.node_cost_per_hour([node.id]) == {node.id: Decimal("27.447050")}


@pytest.mark.parametrize("count", [5, 50])
def test_it_prices_deployments_in_a_constant_number_of_queries(cluster, count, django_assert_max_num_queries):
    deps = deployments_with_pods(cluster, count)
    with django_assert_max_num_queries(2):
        costs = selectors.deployment_cost_per_hour(deps)
    assert set(costs.values()) == {Decimal("6.861762")}  # 2 x 27.44705 / 8 = 6.8617625, half-even


@pytest.mark.parametrize("count", [5, 50])
def test_it_prices_nodes_in_a_constant_number_of_queries(cluster, count, django_assert_max_num_queries):
    deps = deployments_with_pods(cluster, count)
    nodes = [p.node for d in deps for p in d.pods.all()]
    with django_assert_max_num_queries(2):
        costs = selectors.node_cost_per_hour(nodes)
    assert len(costs) == count


def accrue_hours(cluster, hours: int, metrics, start=T0):
    """Syncs every 15 minutes from `start` for `hours` (the first one only sets the watermark)."""
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(hours * 4 + 1):
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=metrics)
            traveller.shift(timedelta(minutes=15))


def test_it_prices_a_million_tokens_from_the_last_day(cluster):
    node = GpuNodeFactory(cluster=cluster, name="a")
    llama = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", gpu_per_replica=4)
    embed = ModelDeploymentFactory(cluster=cluster, namespace="search", name="embed", gpu_per_replica=1)
    PodFactory(deployment=llama, node=node, name="llama-0")
    PodFactory(deployment=embed, node=node, name="embed-0")
    metrics = FakeMetrics({"llama": busy(generation=100.0, prompt=400.0), "embed": busy(generation=0.0, prompt=800.0)})
    assert selectors.deployment_cost_per_million_tokens(llama) is None  # nothing accrued yet

    accrue_hours(cluster, 1, metrics)

    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        result = selectors.deployment_cost_per_million_tokens(llama)
        embedding = selectors.deployment_cost_per_million_tokens(embed)
    # 13.723525 $ for 360,000 generated and 1,440,000 prompt tokens.
    assert result == {
        "usd_per_million_generated": Decimal("38.1209"),
        "usd_per_million_prompt": Decimal("9.5302"),
        "window_hours": Decimal("1.00"),
        "usd": Decimal("13.72352500"),
        "tokens_generated": 360_000,
        "tokens_prompt": 1_440_000,
    }
    assert embedding["usd_per_million_generated"] is None  # an embedding model generates nothing
    assert embedding["usd_per_million_prompt"] == Decimal("1.1913")  # 3.43088125 $ / 2.88M prompt tokens


@pytest.mark.parametrize("count", [5, 50])
def test_it_sums_a_window_in_a_constant_number_of_queries(cluster, count, django_assert_max_num_queries):
    deployments_with_pods(cluster, count)
    accrue_hours(cluster, 2, FakeMetrics())
    start, end = T0 + timedelta(minutes=20), T0 + timedelta(minutes=100)

    for group in selectors.GROUPS:
        with django_assert_max_num_queries(2):
            rows = selectors.cost_by_group(group_by=group, start=start, end=end)
        assert rows
    with django_assert_max_num_queries(2):
        selectors.idle_spenders(start=start, end=end)
    with django_assert_max_num_queries(2):
        selectors.cost_by_capacity_type(start=start, end=end)
    with django_assert_max_num_queries(1):
        spend.spend_over_time(group_by="deployment", start=start, end=end)


def test_it_integrates_exactly_over_a_window_that_cuts_hour_buckets(cluster):
    deployments_with_pods(cluster, 1)
    accrue_hours(cluster, 2, FakeMetrics())

    rows = selectors.cost_by_group(
        group_by="deployment", start=T0 + timedelta(minutes=20), end=T0 + timedelta(minutes=100)
    )

    by_key = {r.key: r for r in rows}
    # 80 minutes of 2 GPUs at 27.44705/8 per GPU-hour, and of the 6 unallocated ones.
    assert by_key["llm/model-p4de.24xlarge-0"].usd_decimal == Decimal("9.14901667")
    assert by_key["(unallocated)"].usd_decimal == Decimal("27.44705000")
    assert by_key["(unallocated)"].idle_gpu_hours == 8  # 6 GPUs x 4/3 h


def test_it_ranks_idle_spenders_including_unallocated_gpus(cluster):
    node = GpuNodeFactory(cluster=cluster, name="a")
    lazy = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="lazy", gpu_per_replica=4)
    PodFactory(deployment=lazy, node=node, name="lazy-0")
    accrue_hours(cluster, 1, FakeMetrics({"lazy": busy(utilization=0.02)}))

    spenders = selectors.idle_spenders(start=T0, end=T0 + timedelta(hours=1))

    # Same idle spend (4 GPUs each for an hour): ties are ordered by name.
    assert [(s.key, pricing.quantize(s.idle_usd)) for s in spenders] == [
        ("(unallocated) nodepool/a100", Decimal("13.72352500")),
        ("llm/lazy", Decimal("13.72352500")),
    ]


def test_it_leaves_hours_with_nothing_accrued_as_gaps_not_zeros(cluster):
    early, late = deployments_with_pods(cluster, 2)
    late_pod = late.pods.get()
    late_pod.phase = "Pending"  # holds no GPUs for the first hour
    late_pod.save()
    start = T0 + timedelta(hours=3)
    with time_machine.travel(start, tick=False) as traveller:
        for step in range(9):
            if step == 5:  # each accrual bills the 15 minutes before it at the state it sees
                late_pod.phase = "Running"
                late_pod.save()
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=FakeMetrics())
            traveller.shift(timedelta(minutes=15))

    series = spend.spend_over_time(group_by="deployment", start=T0, end=T0 + timedelta(hours=6))

    assert series.buckets == [T0 + timedelta(hours=h) for h in range(6)]
    # Accrued from 03:00 to 05:00 only: before and after is unknown, not $0.
    assert series.series["llm/model-p4de.24xlarge-0"] == [None, None, None, Decimal("6.8618"), Decimal("6.8618"), None]
    # Held nothing in the first accrued hour while the rest was billed: a real $0.
    assert series.series["llm/model-p4de.24xlarge-1"] == [None, None, None, Decimal("0"), Decimal("6.8618"), None]


def test_it_leaves_a_group_with_no_price_as_a_gap(cluster):
    deployments_with_pods(cluster, 1, instance_type="p9.unpriced")
    accrue_hours(cluster, 1, FakeMetrics())

    series = spend.spend_over_time(group_by="deployment", start=T0, end=T0 + timedelta(hours=1))

    assert series.series == {"llm/model-p9.unpriced-0": [None], "(unallocated)": [None]}


@pytest.mark.parametrize("replicas", [1, 12])
def test_it_prices_a_deployment_now_in_a_constant_number_of_queries(cluster, replicas, django_assert_max_num_queries):
    dep = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", gpu_per_replica=2)
    for i in range(replicas):
        PodFactory(deployment=dep, node=GpuNodeFactory(cluster=cluster, name=f"n{i}"), name=f"llama-{i}")

    with django_assert_max_num_queries(5):
        cost = selectors.deployment_cost_now(dep)

    assert cost.replicas == replicas and cost.gpus == 2 * replicas
    assert cost.usd_per_gpu_hour == Decimal("3.430881")  # 27.44705 / 8
    assert cost.usd_per_replica_hour == Decimal("6.861762")  # 6.8617625, half-even
    assert cost.usd_per_hour == pricing.quantize(Decimal("6.8617625") * replicas, 6)
    assert cost.slice_profile == "" and cost.usd_per_slice_hour is None
