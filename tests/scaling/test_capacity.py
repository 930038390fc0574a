"""Capacity-aware dry runs: free devices now, new nodes from which pool, its limit, time to Ready."""

from __future__ import annotations

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import Role
from fleet.models import ModelDeployment
from scaling.capacity import PoolOffer, capacity_fit
from tests.factories import ApiTokenFactory, UserFactory
from tests.fakekube import story

POOL = PoolOffer(
    name="h100", units_per_node=8, gpus_per_node=8, gpu_limit=32, gpus_in_use=16, node_ready_p95_seconds=600.0
)


def fit(extra, *, free=(2, 1), pools=(POOL,), per_replica=1, ready=900.0, on_node=300.0):
    return capacity_fit(
        extra_replicas=extra,
        units_per_replica=per_replica,
        free_units_by_node=list(free),
        pools=list(pools),
        pod_ready_p95_seconds=ready,
        pod_start_on_node_seconds=on_node,
        what="H100 GPU",
    )


def test_it_fits_on_free_gpus_now():
    result = fit(3)

    assert (result.fit_now, result.new_nodes, result.satisfiable, result.ready_in_seconds) == (3, 0, True, 900.0)
    assert "fits now on free H100 GPUs" in result.summary and "15 min" in result.summary


def test_it_counts_new_nodes_and_the_time_until_ready():
    result = fit(12)  # 3 fit now, 9 more at 8 a node: 2 nodes; 16 + 16 GPUs within the limit of 32

    assert (result.fit_now, result.new_nodes, result.pool, result.pool_limit_allows) == (3, 2, "h100", True)
    assert result.ready_in_seconds == 900.0  # new node p95 600 s + pull and load 300 s
    assert "need 2 new nodes from pool h100" in result.summary


def test_it_says_plainly_when_the_pool_limit_does_not_allow_it():
    result = fit(30)

    assert (result.satisfiable, result.pool_limit_allows, result.ready_in_seconds) == (False, False, None)
    assert "its limit of 32 GPUs leaves room for 16: they will stay pending" in result.summary


def test_it_says_plainly_when_no_pool_offers_the_gpu():
    result = fit(5, pools=[PoolOffer("small", 4, 4, None, 0, None)], per_replica=8, free=(0,))

    assert not result.satisfiable and "no node pool offers a H100 GPU" in result.summary


def test_it_says_unknown_without_measured_history():
    result = fit(12, pools=[PoolOffer("h100", 8, 8, None, 0, None)])

    assert result.satisfiable and result.ready_in_seconds is None
    assert "time to Ready unknown" in result.summary


def test_it_needs_nothing_for_no_extra_replicas():
    assert fit(0).summary == "no extra GPUs needed" and fit(0).new_nodes == 0


@pytest.mark.django_db
def test_the_dry_run_answers_with_capacity_from_the_story(fake_kube, fake_kubeconfig):
    cluster = story.sync_story(fake_kube, fake_kubeconfig)
    cluster.namespaces = ["llm"]
    cluster.save(update_fields=["namespaces"])
    llama = ModelDeployment.objects.get(name=story.NAME)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role=Role.OPERATOR).raw}")

    with time_machine.travel(story.SYNCED_AT, tick=False):
        answer = api.post(
            f"/api/v1/deployments/{llama.id}/scale/",
            {"replicas": 20, "reason": "launch", "raise_max": True, "dry_run": True},
            format="json",
        )

    assert answer.status_code == 200, answer.content
    capacity = answer.json()["capacity"]
    # gpu-a: 8 GPUs, 2 held; gpu-new: 8 GPUs, 4 held -> 10 free; 4 more need one new 8-GPU node.
    assert (capacity["extra_replicas"], capacity["fit_now"], capacity["new_nodes"]) == (14, 10, 1)
    assert (capacity["pool"], capacity["pool_limit_allows"], capacity["satisfiable"]) == (story.POOL, True, True)
    assert capacity["ready_in_seconds"] == 730.0  # node 380 s + pull 115 s + load 235 s, measured


@pytest.mark.django_db
def test_the_page_confirmation_says_where_the_replicas_go_and_when_it_cannot_be_satisfied(
    client, fake_kube, fake_kubeconfig
):
    cluster = story.sync_story(fake_kube, fake_kubeconfig)
    cluster.namespaces = ["llm"]
    cluster.save(update_fields=["namespaces"])
    llama = ModelDeployment.objects.get(name=story.NAME)
    client.force_login(UserFactory(role=Role.OPERATOR))
    url = f"/scaling/deployments/{llama.id}/controls/"

    with time_machine.travel(story.SYNCED_AT, tick=False):
        fits = client.post(
            url, {"replicas": 20, "mode": "floor", "reason": "launch", "raise_max": "on"}, HTTP_HX_REQUEST="true"
        ).content.decode()
        too_many = client.post(
            url, {"replicas": 80, "mode": "floor", "reason": "launch", "raise_max": "on"}, HTTP_HX_REQUEST="true"
        ).content.decode()

    assert "10 of 14 fit now; the other 4 need 1 new node from pool gpu-h100; Ready in about 13 min" in fits
    assert "Cannot be satisfied now:" in too_many and "its limit of 64 GPUs leaves room for 48" in too_many
    assert not llama.scale_actions.exists()  # a confirmation writes nothing
