"""A scale request through the API reaches the cluster through a real Celery worker on real Redis.

The test process serves the API (Django test client) and the fake Kubernetes API; a separate
`celery -A config worker` process, on the same (committed) test database, picks the action up
from Redis and PATCHes the fake API over HTTP.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from fleet.models import Cluster
from fleet.services import cluster_refresh
from scaling.models import ScaleAction
from tests.factories import ApiTokenFactory
from tests.fakekube import objects as k

pytestmark = pytest.mark.redis

NS = "llm"
KEDA_PATH = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/llama-8b"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/qwen-7b/scale"


def wait_for(predicate, timeout: float, what: str, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout} s; worker log:\n{log_path.read_text()[-4000:]}")


@pytest.fixture
def cluster(fake_kube, fake_kubeconfig, transactional_db):
    llama = k.deployment(NS, "llama-8b", containers=[k.vllm_container(model="org/llama-8b")], replicas=2, ready=2)
    so = k.scaled_object(NS, "llama-8b", target="llama-8b", min_replicas=1, max_replicas=8)
    qwen = k.deployment(NS, "qwen-7b", containers=[k.vllm_container(model="org/qwen-7b")], replicas=1, ready=1)
    fake_kube.load([k.gpu_node("h100-a"), llama, so, k.keda_hpa(so), qwen])
    cluster = Cluster.objects.create(
        name="prod",
        backend=Cluster.Backend.KUBERNETES,
        kubeconfig_path=str(fake_kubeconfig),
        kube_context="fake",
        namespaces=[NS],
    )
    result = cluster_refresh(cluster=cluster)
    assert result.ok, result.error
    fake_kube.clear_requests()
    return cluster


def operator_client() -> Client:
    token = ApiTokenFactory(role="operator", name="slack-bot")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.raw}")


def scale(client: Client, cluster: Cluster, name: str, body: dict):
    deployment = cluster.deployments.get(name=name)
    return client.post(f"/api/v1/deployments/{deployment.id}/scale/", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("name", "kind", "path", "written", "before", "after"),
    [
        ("llama-8b", "ScaledObject", KEDA_PATH, {"minReplicaCount": 5}, {"min_replicas": 1}, {"min_replicas": 5}),
        ("qwen-7b", "Deployment", SCALE_PATH, {"replicas": 3}, {"replicas": 1}, {"replicas": 3}),
    ],
    ids=["scaledobject", "deployment"],
)
def test_an_api_scale_request_reaches_the_cluster_through_a_real_worker(
    celery_worker_process, cluster, fake_kube, tmp_path, name, kind, path, written, before, after
):
    rv = fake_kube.get(kind, NS, name)["metadata"]["resourceVersion"]
    client = operator_client()

    response = scale(client, cluster, name, {"replicas": max(after.values()), "reason": "launch"})

    assert response.status_code == 202, response.content
    action_id = response.json()["id"]
    # How fast is bench/scale_latency.py's question; a busy machine must not fail this one.
    wait_for(lambda: fake_kube.requests_to(path, "PATCH"), 30, "the PATCH", tmp_path / "worker.log")
    [patch] = fake_kube.requests_to(path, "PATCH")
    assert patch.content_type.split(";")[0] == "application/merge-patch+json"
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": written}
    assert [r.method for r in fake_kube.requests if r.method != "GET"] == ["PATCH"]

    wait_for(
        lambda: ScaleAction.objects.get(id=action_id).is_terminal, 30, "the action to finish", tmp_path / "worker.log"
    )
    action = ScaleAction.objects.get(id=action_id)
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert (action.before, action.after) == (before, after)
    assert action.attempts == 1 and action.started_at and action.finished_at
    new_rv = fake_kube.get(kind, NS, name)["metadata"]["resourceVersion"]
    assert (action.resource_version_before, action.resource_version_after) == (rv, new_rv)
    # The audit, as the API shows it: before/after and the Kubernetes answer.
    shown = client.get(f"/api/v1/actions/{action_id}/").json()
    assert (shown["status"], shown["before"], shown["after"]) == ("succeeded", before, after)
    assert shown["response"] == {"code": 200, "body": f"resourceVersion {new_rv}", "resource_version": new_rv}


def test_a_transient_cluster_error_is_retried_by_the_worker_with_backoff(
    celery_worker_process, cluster, fake_kube, tmp_path
):
    fake_kube.fail(SCALE_PATH, 503, method="PATCH", times=1)

    response = scale(operator_client(), cluster, "qwen-7b", {"replicas": 2, "reason": "launch"})

    assert response.status_code == 202, response.content
    action_id = response.json()["id"]
    wait_for(
        lambda: ScaleAction.objects.get(id=action_id).is_terminal, 20, "the retried action", tmp_path / "worker.log"
    )
    action = ScaleAction.objects.get(id=action_id)
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert action.attempts == 2
    first, second = fake_kube.requests_to(SCALE_PATH, "PATCH")
    assert first.body == second.body == {"metadata": first.body["metadata"], "spec": {"replicas": 2}}
    assert fake_kube.get("Deployment", NS, "qwen-7b")["spec"]["replicas"] == 2


def test_beats_tick_through_the_worker_applies_a_due_prescale_rule(celery_worker_process, cluster, fake_kube, tmp_path):
    from scaling.models import PrescaleRule
    from scaling.tasks import scaling_tick

    llama = cluster.deployments.get(name="llama-8b")
    # Every minute, for 5 minutes: a window is open whenever the test runs.
    PrescaleRule.objects.create(deployment=llama, cron="* * * * *", timezone="UTC", min_replicas=4, duration_minutes=5)

    scaling_tick.delay()

    wait_for(lambda: fake_kube.requests_to(KEDA_PATH, "PATCH"), 10, "the rule's PATCH", tmp_path / "worker.log")
    [patch] = fake_kube.requests_to(KEDA_PATH, "PATCH")
    assert patch.body["spec"] == {"minReplicaCount": 4}
    wait_for(lambda: ScaleAction.objects.filter(status="succeeded").exists(), 10, "the action", tmp_path / "worker.log")
    action = ScaleAction.objects.get()
    assert (action.source, action.actor_label, action.after) == ("rule", f"rule:#{action.rule_id}", {"min_replicas": 4})
    assert action.expires_at is not None
