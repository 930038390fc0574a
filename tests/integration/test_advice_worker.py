"""Advice through a real Celery worker (its default threads pool) on real Redis: the search forks
no copy of a threaded process (worker processes start clean) and stores its result."""

import time

import pytest
from django.utils import timezone

from advice import services, tasks
from advice.models import AdviceRun
from fleet.models import Cluster
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world
from tests.factories import ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.redis


def test_it_runs_advice_in_a_real_worker_with_candidate_processes(worker, tmp_path):
    cluster = Cluster.objects.create(name="sim", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod"])
    DbWorldStore(cluster).replace(demo_world(seed=3, now=timezone.now(), warmup_hours=0.5), seed=3)
    deployment = ModelDeploymentFactory(cluster=cluster, namespace="llm-prod", name="llama-3-8b", ttft_slo_seconds=2.0)
    run = services.advice_start(
        user=UserFactory(username="w", role="viewer"),
        deployment=deployment,
        trace=None,
        hours=1,
        rate_multiplier=1.0,
        spike=None,
        slo=None,
        attainment=0.99,
        enqueue=tasks.advice_run.delay,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in AdviceRun.ACTIVE:
            break
        time.sleep(0.5)
    assert run.status == AdviceRun.Status.DONE, f"{run.status}: {run.error}\n{worker.text()[-3000:]}"
    assert run.progress == 1.0 and len(run.result["candidates"]) >= 40
