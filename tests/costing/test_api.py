"""Cost and price API: exact window integration, grouping, errors naming the parameter, the catalog."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from costing.services import cost_accrue
from tests.costing.conftest import FakeMetrics, busy
from tests.costing.factories import InstancePriceFactory
from tests.factories import (
    ApiTokenFactory,
    ClusterFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    PodFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
COSTS = "/api/v1/costs/"
PRICES = "/api/v1/prices/"


@pytest.fixture
def api(client):
    client.force_login(UserFactory(username="finance", role="viewer"))
    return client


@pytest.fixture
def accrued():
    """Two hours of 15-minute syncs: llama (4 A100s, generating) and embed (1 A100, prompts only) on one node."""
    InstancePriceFactory()  # p4de.24xlarge $27.44705/h, 8 GPUs
    cluster = ClusterFactory(name="prod", region="us-east-1")
    node = GpuNodeFactory(cluster=cluster, name="a100-a")
    llama = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama", gpu_per_replica=4)
    embed = ModelDeploymentFactory(cluster=cluster, namespace="search", name="embed", gpu_per_replica=1)
    PodFactory(deployment=llama, node=node, name="llama-0")
    PodFactory(deployment=embed, node=node, name="embed-0")
    metrics = FakeMetrics({"llama": busy(generation=100.0), "embed": busy(generation=0.0, prompt=500.0)})
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(9):
            cost_accrue(cluster=cluster, now=timezone.now(), metrics=metrics)
            traveller.shift(timedelta(minutes=15))
    return cluster


def rows_by_key(response):
    assert response.status_code == 200, response.content
    return {row["key"]: row for row in response.json()["results"]}


def test_it_integrates_cost_over_exactly_the_window_asked(api, accrued):
    # 00:20 to 01:40 cuts both hour buckets: 80 minutes.
    response = api.get(
        COSTS, {"group_by": "deployment", "start": "2026-03-02T00:20:00Z", "end": "2026-03-02T01:40:00Z"}
    )

    rows = rows_by_key(response)
    body = response.json()
    assert body["start"] == "2026-03-02T00:20:00+00:00" and body["end"] == "2026-03-02T01:40:00+00:00"
    assert body["currency"] == "USD" and body["count"] == 3
    llama = rows["llm/llama"]
    assert llama["usd"] == "18.2980"  # 13.723525 $/h x 4/3 h = 18.29803333
    assert llama["gpu_hours"] == "5.3333"
    assert llama["tokens_generated"] == 480_000  # 100 tokens/s x 4,800 s
    assert llama["usd_per_million_tokens"] == "38.1209"
    assert llama["cluster"] == "prod"
    assert rows["search/embed"]["usd"] == "4.5745"  # 3.43088125 x 4/3
    assert rows["search/embed"]["usd_per_million_tokens"] is None  # generates nothing
    assert rows["(unallocated)"]["usd"] == "13.7235"  # 3 GPUs x 4/3 h
    assert rows["(unallocated)"]["idle_gpu_hours"] == "4.0000"
    total = sum(Decimal(r["usd"]) for r in rows.values())
    assert total == Decimal("36.5960")  # the whole node: 27.44705 x 4/3 = 36.59606667


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        ("deployment", {"llm/llama", "search/embed", "(unallocated)"}),
        ("namespace", {"llm", "search", "(unallocated)"}),
        ("node", {"a100-a", "nodepool/a100"}),  # the GPUs no pod holds are the node pool's
        ("cluster", {"prod"}),
    ],
)
def test_it_groups_by_deployment_namespace_node_or_cluster(api, accrued, group_by, keys):
    response = api.get(COSTS, {"group_by": group_by, "start": "2026-03-02T00:00:00Z", "end": "2026-03-02T02:00:00Z"})

    rows = rows_by_key(response)
    assert set(rows) == keys
    assert sum(Decimal(r["usd"]) for r in rows.values()) == Decimal("54.8941")  # 27.44705 x 2 h


def test_it_defaults_to_the_last_24_hours_by_deployment(api, accrued):
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        response = api.get(COSTS)

    body = response.json()
    assert body["group_by"] == "deployment"
    assert body["start"] == "2026-03-01T03:00:00+00:00"
    assert rows_by_key(response)["llm/llama"]["usd"] == "27.4470"  # 2 h x 13.723525 = 27.44705, half-even


def test_it_filters_by_cluster(api, accrued):
    ClusterFactory(name="other")
    response = api.get(
        COSTS,
        {"group_by": "cluster", "cluster": "other", "start": "2026-03-02T00:00:00Z", "end": "2026-03-02T02:00:00Z"},
    )
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "team"}, "group_by"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-45T00:00:00Z"}, "end"),
        ({"start": "2026-03-02T02:00:00Z", "end": "2026-03-02T01:00:00Z"}, "start"),
        ({"start": "2026-03-02T01:00:00Z", "end": "2026-03-02T01:00:00Z"}, "start"),
        ({"start": "2025-01-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "start"),
        ({"cluster": "nope"}, "cluster"),
    ],
)
def test_it_refuses_bad_parameters_with_a_400_naming_them(api, params, field):
    response = api.get(COSTS, params)

    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_it_allows_a_90_day_window(api):
    response = api.get(COSTS, {"start": "2026-01-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"})
    assert response.status_code == 200


def test_it_needs_a_login_or_a_token(client, accrued):
    assert client.get(COSTS).status_code in (401, 403)
    token = ApiTokenFactory(role="viewer")
    response = client.get(COSTS, HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    assert response.status_code == 200


def test_it_lists_the_price_catalog_paginated_with_per_gpu_prices(api):
    InstancePriceFactory(usd_per_hour=Decimal("40.96575"), effective_from=date(2022, 5, 26))
    InstancePriceFactory(usd_per_hour=Decimal("27.44705"), effective_from=date(2025, 6, 1))
    InstancePriceFactory(instance_type="g5.xlarge", usd_per_hour=Decimal("1.006"), gpu_count=1)

    body = api.get(PRICES).json()

    assert set(body) >= {"count", "next", "previous", "results"}
    assert body["count"] == 3
    p4de = [r for r in body["results"] if r["instance_type"] == "p4de.24xlarge"]
    assert [r["effective_from"] for r in p4de] == ["2025-06-01", "2022-05-26"]  # newest first
    assert p4de[0]["usd_per_hour"] == "27.447050"
    assert p4de[0]["usd_per_gpu_hour"] == "3.43088125"  # exactly 27.44705 / 8
    assert {"region", "capacity_type", "gpu_count", "source", "cluster"} <= set(p4de[0])


@pytest.mark.parametrize(
    ("params", "count"),
    [({"instance_type": "g5.xlarge"}, 1), ({"capacity_type": "spot"}, 1), ({"region": "eu-west-1"}, 0)],
)
def test_it_filters_prices(api, params, count):
    InstancePriceFactory()
    InstancePriceFactory(instance_type="g5.xlarge", usd_per_hour=Decimal("1.006"), gpu_count=1)
    InstancePriceFactory(capacity_type="spot", usd_per_hour=Decimal("10.59275"))

    assert api.get(PRICES, params).json()["count"] == count


def test_it_refuses_an_unknown_capacity_type_filter(api):
    response = api.get(PRICES, {"capacity_type": "cheap"})
    assert response.status_code == 400
    assert "capacity_type" in response.json()


def test_it_serves_the_catalog_in_a_constant_number_of_queries(api, django_assert_max_num_queries):
    cluster = ClusterFactory(name="negotiated")
    for i in range(30):
        InstancePriceFactory(instance_type=f"type-{i}", cluster=cluster if i % 2 else None)
    with django_assert_max_num_queries(6):
        assert api.get(PRICES).status_code == 200


def test_it_has_no_write_endpoint_for_prices(api):
    assert api.post(PRICES, {}).status_code in (403, 405)


def test_it_counts_prompt_tokens_and_prices_a_million_of_them(api, accrued):
    response = api.get(
        COSTS, {"group_by": "deployment", "start": "2026-03-02T00:00:00Z", "end": "2026-03-02T02:00:00Z"}
    )

    rows = rows_by_key(response)
    embed = rows["search/embed"]  # an embedding model: 500 prompt tokens/s, nothing generated
    assert embed["tokens_prompt"] == 3_600_000  # 500 tokens/s x 7,200 s
    assert embed["usd"] == "6.8618"  # 3.43088125 $/h x 2 h = 6.8617625
    assert embed["usd_per_million_prompt_tokens"] == "1.9060"  # 6.8617625 / 3.6
    assert embed["usd_per_million_tokens"] is None
    assert rows["llm/llama"]["tokens_prompt"] == 360_000  # 50 tokens/s x 7,200 s
    assert rows["(unallocated)"]["tokens_prompt"] == 0
    assert rows["(unallocated)"]["usd_per_million_prompt_tokens"] is None  # serves nothing


def test_prices_take_the_shared_filters_several_values_contains_search_and_ordering(api):
    InstancePriceFactory()  # p4de.24xlarge, us-east-1
    InstancePriceFactory(instance_type="g5.xlarge", usd_per_hour=Decimal("1.006"), gpu_count=1, gpu_model="A10G")
    InstancePriceFactory(
        instance_type="g6.xlarge", usd_per_hour=Decimal("0.805"), gpu_count=1, gpu_model="L4", region="eu-west-1"
    )

    def types(params):
        response = api.get(PRICES, params)
        assert response.status_code == 200, response.json()
        return [r["instance_type"] for r in response.json()["results"]]

    assert types({"instance_type": ["g5.xlarge", "g6.xlarge"], "ordering": "usd_per_hour"}) == [
        "g6.xlarge",
        "g5.xlarge",
    ]
    assert types({"instance_type__ic": "G5."}) == ["g5.xlarge"]
    assert types({"q": "eu-west"}) == ["g6.xlarge"]
    assert types({"q": "a10g"}) == ["g5.xlarge"]
    assert types({"ordering": "-usd_per_hour"})[0] == "p4de.24xlarge"


@pytest.mark.parametrize(
    "params", [{"instance": "g5.xlarge"}, {"ordering": "cheapest"}, {"capacity_type": ["spot", "cheap"]}]
)
def test_prices_refuse_an_unknown_or_malformed_filter_by_name(api, params):
    response = api.get(PRICES, params)

    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_costs_refuse_an_unknown_parameter_by_name(api):
    response = api.get(COSTS, {"group_by": "namespace", "clustr": "prod"})

    assert response.status_code == 400
    assert list(response.json()) == ["clustr"] and "cluster" in response.json()["clustr"][0]
