"""The autoscaler policy page: preview the exact changes, confirm, and revert from the action's page."""

from __future__ import annotations

import pytest
from django.test import Client

from scaling.models import ScaleAction
from tests.factories import UserFactory
from tests.fakekube import objects as k


def login(role="operator") -> Client:
    client = Client()
    client.force_login(UserFactory(username=f"u-{role}", role=role))
    return client


@pytest.fixture
def keda_deployment(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    return dep


def writes(world):
    return [r for r in world.kube.requests if r.method != "GET"]


def test_it_shows_the_changes_before_writing_and_applies_them_on_confirmation(world, keda_deployment, run_on_commit):
    client = login()
    url = f"/scaling/deployments/{keda_deployment.id}/autoscaler/"
    form = {"min_replicas": "2", "threshold": "4", "reason": "calmer"}

    preview = client.post(url, form)

    html = preview.content.decode()
    assert preview.status_code == 200 and "spec.minReplicaCount" in html and "Apply these changes" in html
    assert writes(world) == [] and not ScaleAction.objects.exists()

    response = run_on_commit(client.post, url, {**form, "confirm": "yes"})

    action = ScaleAction.objects.get()
    assert response.status_code == 302 and action.source == "ui" and action.status == "succeeded"
    assert world.so_spec()["spec"]["triggers"][0]["metadata"]["threshold"] == "4"

    page = client.get(f"/scaling/actions/{action.id}/").content.decode()
    assert "Revert" in page
    run_on_commit(client.post, f"/scaling/actions/{action.id}/revert/", {"reason": "back"})
    assert world.so_spec()["spec"]["minReplicaCount"] == 1
    assert world.so_spec()["spec"]["triggers"][0]["metadata"]["threshold"] == "5"


def test_it_refuses_a_schema_invalid_edit_in_words_with_nothing_written(world, keda_deployment, run_on_commit):
    response = run_on_commit(
        login().post,
        f"/scaling/deployments/{keda_deployment.id}/autoscaler/",
        {"behavior": '{"scaleDown": {"stabilizationWindowSeconds": 7200}}', "reason": "x", "confirm": "yes"},
    )

    assert response.status_code == 400
    assert "Scaling behavior" in response.content.decode()
    assert writes(world) == [] and not ScaleAction.objects.exists()


def test_it_warns_on_the_page_when_gitops_manages_the_autoscaler(world):
    from fleet.models import Autoscaler

    dep = world.deployment()
    so = k.scaled_object("llm", "llama", target="llama")
    so["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": "serving:keda.sh/ScaledObject:llm/llama"}
    world.kube.load(so)
    Autoscaler.objects.create(
        cluster=world.cluster, namespace="llm", kind="scaledobject", name="llama", target_name="llama", deployment=dep
    )

    html = login().post(f"/scaling/deployments/{dep.id}/autoscaler/", {"max_replicas": "9", "reason": "x"})

    assert "GitOps" in html.content.decode() and "argocd.argoproj.io/tracking-id" in html.content.decode()


def test_it_keeps_viewers_out(world, keda_deployment):
    assert login("viewer").get(f"/scaling/deployments/{keda_deployment.id}/autoscaler/").status_code == 403
    assert (
        login("viewer")
        .post(
            f"/scaling/deployments/{keda_deployment.id}/autoscaler/",
            {"min_replicas": "2", "reason": "x", "confirm": "yes"},
        )
        .status_code
        == 403
    )
    assert writes(world) == []
