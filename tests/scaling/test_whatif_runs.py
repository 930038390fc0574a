"""What-if runs in the worker, one at a time per user, and the page waits for it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.test import Client
from django.utils import timezone

from config.celery import app
from core.errors import ApplicationError
from fleet.models import Cluster
from fleet.world_store import DbWorldStore
from scaling import tasks, whatif_runs
from scaling.models import WhatIfRun
from scaling.whatif_runs import run_result, whatif_run_execute, whatif_run_start
from simulator import World
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory
from tests.scaling.test_whatif import _demo_state  # one demo world, built once for both modules

POLICIES = ["keda min=1 max=4", "none min=2"]


@pytest.fixture
def llama(db):
    cluster = ClusterFactory(
        name="demo", backend=Cluster.Backend.SIMULATED, kubeconfig_path="", namespaces=["llm-prod"]
    )
    DbWorldStore(cluster).replace(World.from_dict(_demo_state()), seed=3)
    return ModelDeploymentFactory(cluster=cluster, namespace="llm-prod", name="llama-3-8b", ttft_slo_seconds=2.0)


def start(deployment, user, sent: list | None = None) -> WhatIfRun:
    return whatif_run_start(
        deployment=deployment,
        policies=POLICIES,
        hours=1.5,
        spike=None,
        user=user,
        enqueue=(sent if sent is not None else []).append,
    )


def test_it_runs_in_the_worker_and_stores_what_the_page_shows(llama):
    user = UserFactory(role="viewer")
    sent = []
    run = start(llama, user, sent)

    assert sent == [run.id] and run.status == WhatIfRun.Status.QUEUED
    whatif_run_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.DONE and run.finished_at is not None
    result = run_result(run)
    summaries = result.summaries
    assert result.history is False and result.notes == ()
    assert [s.policy.label for s in summaries] == POLICIES
    assert len(summaries[0].series["at"]) == len(summaries[0].series["replicas_ready"]) > 60
    assert summaries[1].peak_replicas == 2


def test_a_second_run_of_the_same_user_waits_for_the_first(llama):
    user = UserFactory(role="viewer")
    start(llama, user)

    with pytest.raises(ApplicationError) as exc:
        start(llama, user)

    assert exc.value.status == 409
    assert exc.value.message.startswith("your previous what-if is still running")
    start(llama, UserFactory(role="viewer"))  # someone else is not held up
    assert WhatIfRun.objects.count() == 2


def test_a_run_whose_worker_was_lost_does_not_lock_its_user_out(llama):
    user = UserFactory(role="viewer")
    lost = start(llama, user)
    WhatIfRun.objects.filter(id=lost.id).update(created_at=timezone.now() - timedelta(minutes=5))

    start(llama, user)

    lost.refresh_from_db()
    assert (lost.status, lost.error) == (WhatIfRun.Status.FAILED, "did not finish: its worker was lost")


def test_a_run_past_its_time_limit_is_marked_failed(llama, monkeypatch):
    run = start(llama, UserFactory(role="viewer"))

    def too_slow(**_):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(whatif_runs, "whatif_compare", too_slow)
    assert tasks.whatif_run.run(run.id) == f"what-if {run.id}: timed out"

    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.FAILED
    assert run.error == "took longer than 60 s: try fewer hours or policies"


def test_the_task_has_a_time_limit_and_is_not_retried():
    assert (tasks.whatif_run.soft_time_limit, tasks.whatif_run.time_limit) == (60, 75)
    assert tasks.whatif_run.acks_late is False


@pytest.fixture
def queued_only(monkeypatch):
    """As in production: the page only queues the run (recorded here); nothing runs it inline."""
    sent = []
    monkeypatch.setattr(tasks.whatif_run, "delay", sent.append)
    app.conf.task_always_eager = False  # the root conftest sets it back for the next test
    return sent


def test_the_page_polls_until_the_worker_has_answered(llama, queued_only):
    client = Client()
    client.force_login(UserFactory(role="viewer"))

    page = client.post(
        f"/scaling/deployments/{llama.id}/whatif/", {"policies": "\n".join(POLICIES), "hours": "1.5"}
    ).content.decode()

    [run_id] = queued_only
    poll = f'hx-get="/scaling/deployments/{llama.id}/whatif/{run_id}/"'
    assert poll in page and 'hx-trigger="every 1s"' in page and "whatif-results" not in page
    assert poll in client.get(f"/scaling/deployments/{llama.id}/whatif/{run_id}/").content.decode()

    whatif_run_execute(run_id=run_id)
    fragment = client.get(f"/scaling/deployments/{llama.id}/whatif/{run_id}/").content.decode()
    assert "whatif-results" in fragment and "hx-trigger" not in fragment and "none min=2" in fragment


def test_a_second_click_while_running_is_refused_on_the_page(llama, queued_only):
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    body = {"policies": "none min=2", "hours": "1.5"}
    client.post(f"/scaling/deployments/{llama.id}/whatif/", body)

    response = client.post(f"/scaling/deployments/{llama.id}/whatif/", body)

    assert response.status_code == 409
    assert "your previous what-if is still running" in response.content.decode()
    assert len(queued_only) == 1


def test_nobody_reads_someone_elses_run(llama):
    run = start(llama, UserFactory(role="viewer"))
    client = Client()
    client.force_login(UserFactory(role="admin"))

    assert client.get(f"/scaling/deployments/{llama.id}/whatif/{run.id}/").status_code == 404
    assert "whatif-run" not in client.get(f"/scaling/deployments/{llama.id}/whatif/?run={run.id}").content.decode()
