"""The MIG plan pages: operators plan a pool from the list; everyone reads a plan."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mig.models import MigPlan
from tests.costing.factories import InstancePriceFactory
from tests.factories import ClusterFactory, GpuNodeFactory, ModelDeploymentFactory, NodePoolFactory, PodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool():
    InstancePriceFactory()
    cluster = ClusterFactory(name="prod")
    pool = NodePoolFactory(cluster=cluster, name="a100")
    nodes = [GpuNodeFactory(cluster=cluster, node_pool=pool, name=f"a100-{i}") for i in range(2)]
    small = ModelDeploymentFactory(
        cluster=cluster, name="mistral-7b", model="mistralai/Mistral-7B-v0.3", replicas_desired=2
    )
    odd = ModelDeploymentFactory(cluster=cluster, name="assistant", model="my-org/<i>assistant</i>")
    PodFactory(deployment=small, node=nodes[0])
    PodFactory(deployment=small, node=nodes[1])
    PodFactory(deployment=odd, node=nodes[1])
    return pool


def test_an_operator_plans_a_pool_and_reads_the_plan(operator_client, pool, fake_metrics):
    response = operator_client.post(reverse("mig:plan-create"), {"node_pool": pool.id})

    plan = MigPlan.objects.get()
    assert response.status_code == 302 and response.url == reverse("mig:plan", args=[plan.id])
    html = operator_client.get(response.url).content.decode()
    for text in [
        "MIG plan #",
        "llm/mistral-7b",
        "1g.20gb",
        "$54.89/h now",
        "$27.45/h</strong> after",
        "8 GPUs freed",
        "freed",
        "memory need unknown: the parameter count is not in the model name",
        "llm/assistant",
    ]:
        assert text in html, text


def test_a_custom_layout_shows_its_config_map_entry(operator_client, pool, fake_metrics):
    operator_client.post(reverse("mig:plan-create"), {"node_pool": pool.id})
    html = operator_client.get(reverse("mig:plan", args=[MigPlan.objects.get().id])).content.decode()
    assert "add this entry to the mig-parted ConfigMap" in html
    assert "mig-enabled: true" in html


def test_viewers_see_plans_but_cannot_make_one(viewer_client, pool):
    page = viewer_client.get(reverse("mig:plans")).content.decode()
    assert "No plan yet." in page and 'action="/mig/plans/new/"' not in page
    response = viewer_client.post(reverse("mig:plan-create"), {"node_pool": pool.id})
    assert response.status_code == 403 and not MigPlan.objects.exists()


@pytest.mark.parametrize("value", ["", "abc", "999999"])
def test_a_missing_pool_is_an_inline_error(operator_client, pool, value):
    response = operator_client.post(reverse("mig:plan-create"), {"node_pool": value})
    assert response.status_code == 400
    assert "Choose a node pool." in response.content.decode()
    assert not MigPlan.objects.exists()
