"""The costs page: whole page or HTMX fragment, ranges, CSV downloads, constant queries."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from costing.services import cost_accrue
from tests.costing.conftest import FakeMetrics, busy
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(username="finance", role="viewer"))
    return client


def build(count: int = 1):
    """`count` deployments (2 A100s each, one on spot) on their own p4de nodes, accrued for two hours."""
    InstancePriceFactory()
    InstancePriceFactory(capacity_type="spot", usd_per_hour=Decimal("10.59275"))
    cluster = ClusterFactory(name="prod", region="us-east-1")
    metrics = {}
    for i in range(count):
        node = GpuNodeFactory(cluster=cluster, name=f"a100-{i}", capacity_type="spot" if i == 0 else "on-demand")
        dep = ModelDeploymentFactory(cluster=cluster, namespace=f"team-{i % 3}", name=f"model-{i}", gpu_per_replica=2)
        PodFactory(deployment=dep, node=node, name=f"model-{i}-0")
        metrics[dep.name] = busy(utilization=0.05 if i == 1 else 0.5)
    fake = FakeMetrics(metrics)
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(9):
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=fake)
            traveller.shift(timedelta(minutes=15))
    return cluster


def get(client, headers=None, **params):
    with time_machine.travel(NOW, tick=False):
        return client.get(reverse("costing:costs"), params, **(headers or {}))


def test_it_shows_spend_idle_waste_and_spot_savings(viewer):
    build(3)

    response = get(viewer)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and "Costs" in html
    assert 'data-figure="costs-figure"' in html
    for title in ("Spend by namespace", "What a GPU-hour costs", "Top idle spenders", "Spot vs on-demand"):
        assert title in html
    assert "llm/model-1" not in html  # namespaces are team-N
    assert "team-1/model-1" in html  # the idle one, in the idle table
    assert "(unallocated) nodepool/a100" in html
    assert "plotly" in html


def test_it_answers_htmx_with_the_fragment_only(viewer):
    build(1)

    response = get(viewer, range="7d", group="deployment", headers={"HTTP_HX_REQUEST": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="costs"' in html
    assert "team-0/model-0" in html


@pytest.mark.parametrize(
    ("params", "notice"), [({"range": "1y"}, "Unknown range"), ({"group": "pod"}, "Unknown grouping")]
)
def test_it_falls_back_to_defaults_on_a_bad_choice_and_says_so(viewer, params, notice):
    response = get(viewer, **params)

    assert response.status_code == 200
    assert notice in response.content.decode()


def test_it_flags_nodes_with_no_price(viewer):
    cluster = build(1)
    GpuNodeFactory(cluster=cluster, name="mystery", instance_type="p9.mega")

    html = get(viewer).content.decode()

    assert "No price" in html and "p9.mega" in html


def test_it_escapes_cluster_provided_names(viewer):
    cluster = build(1)
    ModelDeploymentFactory(cluster=cluster, namespace="x", name="<script>alert(1)</script>")
    GpuNodeFactory(cluster=cluster, name="n<b>", instance_type="<img src=x>")

    html = get(viewer).content.decode()

    assert "<script>alert(1)</script>" not in html and "<img src=x>" not in html


def test_it_downloads_any_table_as_csv_with_units_in_the_header(viewer):
    build(2)

    response = get(viewer, format="csv", table="spend", group="deployment")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="scaledeck-spend-24h-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["Deployment", "Cluster", "Spend (USD)", "GPU-hours"]
    by_key = {r[0]: r for r in rows[1:]}
    assert by_key["team-1/model-1"][2] == "13.7235"  # 2 h x 2 x 27.44705/8 = 13.723525: a plain decimal
    assert by_key["team-0/model-0"][2] == "5.2964"  # spot: 2 h x 2 x 10.59275/8 = 5.2963750
    for table in ("gpu", "idle", "capacity"):
        assert get(viewer, format="csv", table=table).status_code == 200


def test_it_shows_what_spot_saved(viewer):
    build(1)

    response = get(viewer, format="csv", table="capacity")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Capacity type", "Spend (USD)", "GPU-hours", "Same hours on-demand (USD)", "Spot savings (USD)"]
    assert rows[1] == ["spot", "21.1855", "16.0000", "54.8941", "33.7086"]  # whole node, 2 h


def test_it_refuses_an_unknown_csv_table(viewer):
    response = get(viewer, format="csv", table="secrets")

    assert response.status_code == 400
    assert "spend" in response.content.decode()


def test_it_defuses_spreadsheet_formulas_in_csv_cells(viewer):
    cluster = build(0)
    node = GpuNodeFactory(cluster=cluster, name="n1")
    dep = ModelDeploymentFactory(cluster=cluster, namespace="=cmd", name="x")
    PodFactory(deployment=dep, node=node, name="x-0")
    cost_accrue(cluster=cluster, now=NOW + timedelta(minutes=15), metrics=FakeMetrics())

    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        response = viewer.get(reverse("costing:costs"), {"format": "csv", "table": "spend"})

    assert "\n=cmd" not in response.content.decode()
    assert "'=cmd" in response.content.decode()


def test_it_needs_a_login(client):
    response = client.get(reverse("costing:costs"))
    assert response.status_code == 302


@pytest.mark.parametrize("count", [3, 30])
def test_it_renders_in_a_constant_number_of_queries(viewer, count, django_assert_max_num_queries):
    build(count)
    with django_assert_max_num_queries(25):
        assert get(viewer, group="deployment").status_code == 200


def test_it_prices_a_million_prompt_tokens_for_a_model_that_only_reads_prompts(viewer):
    InstancePriceFactory()
    cluster = ClusterFactory(name="prod", region="us-east-1")
    node = GpuNodeFactory(cluster=cluster, name="embed-node")
    embed = ModelDeploymentFactory(cluster=cluster, namespace="search", name="embed", gpu_per_replica=2)
    PodFactory(deployment=embed, node=node, name="embed-0")
    metrics = FakeMetrics({"embed": busy(generation=0.0, prompt=6300.0)})
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(9):
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=metrics)
            traveller.shift(timedelta(minutes=15))

    response = get(viewer, format="csv", table="spend", group="deployment")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header = rows[0]
    row = dict(zip(header, {r[0]: r for r in rows[1:]}["search/embed"], strict=True))
    assert row["Generated tokens"] == "0" and row["USD per 1M generated tokens"] == ""
    assert row["Prompt tokens"] == "45360000"  # 6,300 tokens/s x 7,200 s
    assert row["USD per 1M prompt tokens"] == "0.3025"  # 2 h x 2 x 27.44705/8 = 13.723525 / 45.36
    html = get(viewer, group="deployment").content.decode()
    assert "USD per 1M prompt tokens" in html and "$0.3025" in html


def test_it_draws_hours_with_nothing_accrued_as_gaps(viewer):
    build(1)  # accrued from 00:00 to 02:00 only; the 24 h range begins the day before

    response = get(viewer)

    figure = response.context["chart"]["figure"]
    trace = {t["name"]: t for t in figure["data"]}["team-0"]
    assert trace["type"] == "bar" and "stackgroup" not in trace  # a stacked area fills gaps with $0
    assert trace["y"][:22] == [None] * 22  # the hours before accrual began
    assert trace["y"][22:] == [2.6482, 2.6482]  # 2 spot GPUs x 10.59275/8 per GPU-hour
    html = response.content.decode()
    assert '"y": [null, null' in html and "unknown, not $0" in html


def test_it_says_what_1m_tokens_of_a_deployment_cost_for_the_deployment_page(viewer):
    from core.templatetags.scaledeck import usd
    from costing.selectors import deployment_cost_per_million_tokens
    from fleet.models import ModelDeployment

    build(2)
    accrued = ModelDeployment.objects.get(name="model-0")
    fresh = ModelDeploymentFactory(name="new-model")

    with time_machine.travel(NOW, tick=False):
        html = viewer.get(reverse("costing:deployment-cost-per-million", args=[accrued.id])).content.decode()
        expected = deployment_cost_per_million_tokens(accrued)["usd_per_million_generated"]
        unknown = viewer.get(reverse("costing:deployment-cost-per-million", args=[fresh.id])).content.decode()
        missing = viewer.get(reverse("costing:deployment-cost-per-million", args=[10**9]))

    assert html.strip() == f"{usd(expected)} per 1M generated tokens (last 2 h)"
    assert unknown.strip() == "cost per 1M tokens: not known yet"
    assert missing.status_code == 404
