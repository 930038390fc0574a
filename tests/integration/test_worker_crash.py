"""A real worker on real Redis, SIGKILLed at every point of the write protocol, then started again.

The fake Kubernetes API stalls a PATCH (before applying it, or after applying it and before
answering) so the kill lands while the write is in flight; the worker is started again as a
supervisor would. What must hold (issue 10): the action ends `succeeded` with the true `before`
when its write landed, is written exactly once otherwise, its TTL restore brings the original value
back, and a worker that lost a process takes new work again within 60 s.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from fleet.models import Cluster
from fleet.services import cluster_refresh
from scaling.models import ScaleAction
from scaling.tasks import scaling_tick
from tests.factories import ApiTokenFactory
from tests.fakekube import objects as k

pytestmark = pytest.mark.redis

NS = "llm"
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/llama"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/qwen/scale"
KEDA_PATH = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/mistral"
# How long the fake API stalls a PATCH: longer than a test needs to kill the worker, shorter than
# the client's 10 s timeout would matter (the worker is dead by then).
STALL_SECONDS = 8


def wait_for(predicate, timeout: float, what: str, worker):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout} s; worker log:\n{worker.text()[-4000:]}")


@pytest.fixture
def cluster(fake_kube, fake_kubeconfig, transactional_db):
    def vllm(name, replicas):
        return k.deployment(
            NS, name, containers=[k.vllm_container(model=f"org/{name}")], replicas=replicas, ready=replicas
        )

    so = k.scaled_object(NS, "mistral", target="mistral", min_replicas=1, max_replicas=8)
    fake_kube.load(
        [
            k.gpu_node("h100-a"),
            vllm("llama", 1),
            k.hpa(NS, "llama", target="llama", min_replicas=1, max_replicas=4),
            vllm("qwen", 4),
            vllm("mistral", 1),
            so,
            k.keda_hpa(so),
        ]
    )
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


@pytest.fixture
def client(transactional_db) -> Client:
    token = ApiTokenFactory(role="operator", name="slack-bot")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.raw}")


def scale(client: Client, cluster: Cluster, name: str, **body) -> int:
    deployment = cluster.deployments.get(name=name)
    response = client.post(
        f"/api/v1/deployments/{deployment.id}/scale/",
        json.dumps({"reason": "launch", **body}),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def finished(action_id: int) -> bool:
    return ScaleAction.objects.get(id=action_id).is_terminal


def spec(fake_kube, kind: str, name: str) -> dict:
    return fake_kube.get(kind, NS, name)["spec"]


@pytest.mark.parametrize(
    ("name", "kind", "path", "field", "body", "original", "written"),
    [
        # The reports: an HPA floor 1 -> 2 for 10 minutes, a Deployment 4 -> 5 for 3 minutes.
        ("llama", "HorizontalPodAutoscaler", HPA_PATH, "minReplicas", {"replicas": 2, "ttl_minutes": 10}, 1, 2),
        ("qwen", "Deployment", SCALE_PATH, "replicas", {"replicas": 5, "ttl_minutes": 3}, 4, 5),
    ],
    ids=["hpa", "deployment"],
)
def test_a_worker_killed_after_its_write_landed_records_the_true_before_and_the_ttl_restores_it(
    worker, cluster, fake_kube, client, name, kind, path, field, body, original, written
):
    fake_kube.delay(STALL_SECONDS, path=path, method="PATCH", after_applying=True)
    action_id = scale(client, cluster, name, **body)
    wait_for(lambda: spec(fake_kube, kind, name)[field] == written, 20, "the PATCH", worker)

    worker.kill()  # the write landed; its answer is still on the way
    assert ScaleAction.objects.get(id=action_id).status == ScaleAction.Status.RUNNING
    fake_kube.reset_switches()
    worker.start()

    wait_for(lambda: finished(action_id), 60, "the recovered action", worker)
    shown = client.get(f"/api/v1/actions/{action_id}/").json()
    key = "min_replicas" if kind != "Deployment" else "replicas"
    assert (shown["status"], shown["before"], shown["after"]) == ("succeeded", {key: original}, {key: written})
    assert "nothing was written" not in json.dumps(shown)
    assert len(fake_kube.requests_to(path, "PATCH")) == 1

    # Its time is up (moved forward rather than waited for): beat's tick through the worker restores it.
    ScaleAction.objects.filter(id=action_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    scaling_tick.delay()
    wait_for(lambda: ScaleAction.objects.get(id=action_id).restored_at is not None, 60, "the restore", worker)
    assert spec(fake_kube, kind, name)[field] == original
    shown = client.get(f"/api/v1/actions/{action_id}/").json()
    restore = client.get(f"/api/v1/actions/{shown['restore_action']}/").json()
    assert (restore["status"], restore["before"], restore["after"]) == ("succeeded", {key: written}, {key: original})


def test_a_worker_killed_before_its_write_landed_writes_it_once_after_the_restart(worker, cluster, fake_kube, client):
    # The PATCH reaches the API server and stalls there before it is handled; the first one is then
    # refused, so it never applies. (Every PATCH stalls: the re-run's too, after the first is refused.)
    fake_kube.delay(3, path=KEDA_PATH, method="PATCH")
    fake_kube.fail(KEDA_PATH, 503, method="PATCH", times=1)
    action_id = scale(client, cluster, "mistral", replicas=3)
    wait_for(lambda: fake_kube.requests_to(KEDA_PATH, "PATCH"), 20, "the PATCH", worker)
    assert ScaleAction.objects.get(id=action_id).intent["write"] == {"min_replicas": 3}

    worker.kill()
    worker.start()

    wait_for(lambda: finished(action_id), 60, "the re-run", worker)
    action = ScaleAction.objects.get(id=action_id)
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert (action.before, action.after, action.response_code) == ({"min_replicas": 1}, {"min_replicas": 3}, 200)
    assert spec(fake_kube, "ScaledObject", "mistral")["minReplicaCount"] == 3
    assert len(fake_kube.requests_to(KEDA_PATH, "PATCH")) == 2  # the lost one and the one that landed


def test_a_worker_killed_after_recording_the_outcome_redoes_nothing_and_takes_new_work_within_a_minute(
    worker, cluster, fake_kube, client
):
    assert worker.pool_processes() == []  # config/celery.py's default pool: threads, no children to lose
    action_id = scale(client, cluster, "mistral", replicas=4)
    wait_for(lambda: finished(action_id), 30, "the action", worker)
    done = ScaleAction.objects.get(id=action_id)

    worker.kill()
    worker.start()  # as its supervisor would; the reconciler runs at start
    killed_at = time.monotonic()
    second = scale(client, cluster, "qwen", replicas=6)

    wait_for(lambda: finished(second), 60, "a new scale request", worker)
    assert time.monotonic() - killed_at < 60
    assert ScaleAction.objects.get(id=second).status == ScaleAction.Status.SUCCEEDED
    assert spec(fake_kube, "Deployment", "qwen")["replicas"] == 6
    again = ScaleAction.objects.get(id=action_id)
    assert (again.status, again.before, again.after, again.attempts) == (done.status, done.before, done.after, 1)
    assert len(fake_kube.requests_to(KEDA_PATH, "PATCH")) == 1


@pytest.mark.parametrize("worker", ["prefork"], indirect=True)
def test_a_prefork_worker_that_loses_a_pool_process_takes_new_scale_requests_within_a_minute(
    worker, cluster, fake_kube, client
):
    """For deployments that choose prefork (SCALEDECK_WORKER_POOL): a child killed mid-write is
    replaced, its redelivered message takes over the dead claim, and new work goes on."""
    fake_kube.delay(STALL_SECONDS, path=SCALE_PATH, method="PATCH", after_applying=True)
    first = scale(client, cluster, "qwen", replicas=5)
    wait_for(lambda: spec(fake_kube, "Deployment", "qwen")["replicas"] == 5, 20, "the PATCH", worker)
    claimer = int(ScaleAction.objects.get(id=first).claimed_by.split(":")[1])
    assert claimer in worker.pool_processes()
    fake_kube.reset_switches()

    os.kill(claimer, signal.SIGKILL)
    killed_at = time.monotonic()
    second = scale(client, cluster, "mistral", replicas=3)

    wait_for(lambda: finished(second) and finished(first), 60, "both actions", worker)
    assert time.monotonic() - killed_at < 60
    assert ScaleAction.objects.get(id=second).status == ScaleAction.Status.SUCCEEDED
    recovered = ScaleAction.objects.get(id=first)
    assert (recovered.status, recovered.before) == (ScaleAction.Status.SUCCEEDED, {"replicas": 4})
