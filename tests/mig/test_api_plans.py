"""POST /api/v1/mig-plans/ {cluster, node_pool}: a stored plan in the contract's shape."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from fleet.mig import gpu_models
from mig.models import MigPlan
from mig.planner import layout_is_valid
from tests.costing.factories import InstancePriceFactory
from tests.factories import (
    A100,
    ClusterFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    NodePoolFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/mig-plans/"


@pytest.fixture
def pool():
    """Three 8 x A100 80GB nodes: two small models on whole GPUs, and a 70B on tensor parallel 4."""
    InstancePriceFactory()
    cluster = ClusterFactory(name="prod")
    pool = NodePoolFactory(cluster=cluster, name="a100")
    nodes = [GpuNodeFactory(cluster=cluster, node_pool=pool, name=f"a100-{i}") for i in range(3)]
    small = ModelDeploymentFactory(
        cluster=cluster, name="llama-8b", model="meta-llama/Llama-3.1-8B-Instruct", replicas_desired=4
    )
    tiny = ModelDeploymentFactory(
        cluster=cluster, name="qwen-1b", model="Qwen/Qwen2.5-1.5B-Instruct", replicas_desired=3, max_model_len=4096
    )
    big = ModelDeploymentFactory(
        cluster=cluster,
        name="llama-70b",
        model="meta-llama/Llama-3.1-70B-Instruct",
        gpu_per_replica=4,
        replicas_desired=1,
    )
    for i in range(4):
        PodFactory(deployment=small, node=nodes[i % 2])
    for _ in range(3):
        PodFactory(deployment=tiny, node=nodes[1])
    PodFactory(deployment=big, node=nodes[2])
    return pool


def test_it_plans_the_pool_and_answers_201_in_the_contract_shape(api_as, pool, fake_metrics):
    response = api_as(Role.OPERATOR).post(URL, {"cluster": "prod", "node_pool": "a100"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert {
        "id",
        "cluster",
        "node_pool",
        "nodes",
        "placements",
        "kept_whole",
        "usd_per_hour_before",
        "usd_per_hour_after",
    } <= set(body)
    assert (body["cluster"], body["node_pool"]) == ("prod", "a100")
    placements = {p["deployment_name"]: (p["profile"], p["replicas"]) for p in body["placements"]}
    assert placements == {"llm/llama-8b": ("3g.40gb", 4), "llm/qwen-1b": ("1g.10gb", 3)}
    assert [(k["deployment_name"], k["whole_gpus"]) for k in body["kept_whole"]] == [("llm/llama-70b", 4)]
    assert "tensor parallel 4" in body["kept_whole"][0]["why"]
    model = gpu_models()[A100]
    for node in body["nodes"]:
        assert {"node", "from_config", "to_config", "devices_before", "devices_after"} <= set(node)
    stored = MigPlan.objects.get(id=body["id"])
    for node in stored.nodes:
        assert all(layout_is_valid(model, layout) for layout in node["gpu_layouts"] if layout)
    assert sum(n["freed"] for n in body["nodes"]) == 2  # everything fits one node
    assert Decimal(body["usd_per_hour_before"]) == Decimal("82.34115")
    assert Decimal(body["usd_per_hour_after"]) == Decimal("27.44705")
    assert stored.actor_label.startswith("bot:")


def test_viewers_cannot_plan(api_as, pool):
    response = api_as(Role.VIEWER).post(URL, {"cluster": "prod", "node_pool": "a100"}, format="json")
    assert response.status_code == 403
    assert not MigPlan.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cluster": "nope", "node_pool": "a100"}, "cluster", "no cluster named nope"),
        ({"cluster": "prod", "node_pool": "h100"}, "node_pool", "cluster prod has no node pool named h100"),
        ({"cluster": "prod"}, "node_pool", "This field is required."),
    ],
)
def test_it_refuses_unknown_clusters_and_pools_and_stores_nothing(api_as, pool, body, field, message):
    response = api_as(Role.OPERATOR).post(URL, body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert not MigPlan.objects.exists()


def test_it_refuses_a_pool_without_gpu_nodes(api_as, pool):
    NodePoolFactory(cluster=pool.cluster, name="cpu")
    response = api_as(Role.OPERATOR).post(URL, {"cluster": "prod", "node_pool": "cpu"}, format="json")
    assert response.status_code == 400
    assert "node pool cpu has no GPU node" in str(response.json())


def test_plans_are_listed_and_read_back_in_few_queries(api_as, pool, fake_metrics):
    operator = api_as(Role.OPERATOR)
    for _ in range(3):
        operator.post(URL, {"cluster": "prod", "node_pool": "a100"}, format="json")
    with CaptureQueriesContext(connection) as queries:
        listing = operator.get(URL)
    assert listing.status_code == 200 and listing.json()["count"] == 3
    assert len(queries) <= 6
    plan_id = listing.json()["results"][0]["id"]
    assert operator.get(f"{URL}{plan_id}/").json()["id"] == plan_id


def test_a_plan_made_is_in_the_audit_list(api_as, pool, fake_metrics):
    body = api_as(Role.OPERATOR).post(URL, {"cluster": "prod", "node_pool": "a100"}, format="json").json()

    rows = api_as(Role.ADMIN).get("/api/v1/audit/?kind=mig_plan").json()["results"]

    assert [(r["kind"], r["object"]) for r in rows] == [("mig_plan", f"prod/a100 plan #{body['id']}")]
    assert rows[0]["actor"].startswith("bot-") and rows[0]["before"] is None  # the token's name
    assert {n["node"] for n in rows[0]["after"]["nodes"]} == {"a100-0", "a100-1", "a100-2"}
    assert Decimal(rows[0]["after"]["usd_per_hour_after"]) == Decimal(body["usd_per_hour_after"])
