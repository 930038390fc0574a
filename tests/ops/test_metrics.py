"""/metrics: the named series after a sync and a scale action, the bearer token, and counters
written by another process reaching the web's scrape (multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from fleet.backends.base import BackendError
from fleet.backends.observed import ObservedPrometheusBackend
from fleet.models import Cluster, ModelDeployment
from fleet.tasks import sync_cluster
from fleet.world_store import DbWorldStore
from scaling.models import ScaleAction
from scaling.services import Actor, scale_action_request
from scaling.services.prescale import Firing
from simulator import demo_world
from tests.conftest import ROOT

NAMED_SERIES = {
    "scaledeck_cluster_sync_age_seconds",
    "scaledeck_cluster_sync_duration_seconds",
    "scaledeck_cluster_sync_errors",
    "scaledeck_scale_actions",
    "scaledeck_scale_action_latency_seconds",
    "scaledeck_prometheus_query_errors",
    "scaledeck_prescale_firings",
    "scaledeck_celery_tasks",
}


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """family name -> {(sample name, sorted labels): value}"""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def value(families, family, sample, **labels) -> float:
    return families.get(family, {}).get((sample, tuple(sorted(labels.items()))), 0.0)


def own_counters(tmp_path) -> dict[str, dict[tuple, float]]:
    """This process's counters only. The metrics folder is shared by every process started from
    the checkout (other test runs too), so a count under a fixed label (a task name) is compared
    on this process's own files; counts under a label unique to the test are read from /metrics."""
    folder = tmp_path / "own-metrics"
    folder.mkdir(parents=True)
    for path in Path(metrics.multiprocess_folder()).glob(f"*_{os.getpid()}.db"):
        (folder / path.name).symlink_to(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return {
        family.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        for family in registry.collect()
    }


@pytest.fixture
def sim(db):
    cluster = Cluster.objects.create(
        name=f"m-{uuid.uuid4().hex[:8]}", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod", "team-search"]
    )
    now = datetime.now(UTC)
    DbWorldStore(cluster).replace(demo_world(seed=3, now=now, warmup_hours=0.25), seed=3)
    return cluster


def test_it_exposes_every_named_series_after_a_sync_and_a_scale_action(
    client, sim, django_capture_on_commit_callbacks, tmp_path
):
    before = own_counters(tmp_path / "before")
    sync_cluster.delay(sim.id)
    dep = ModelDeployment.objects.get(cluster=sim, name="llama-3-8b")
    with django_capture_on_commit_callbacks(execute=True):
        action = scale_action_request(
            deployment=dep, replicas=6, reason="launch", actor=Actor(label="alice", key="user:1"), source="api"
        )
    action.refresh_from_db()
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error

    after = scrape(client)

    assert set(after) >= NAMED_SERIES
    cluster = sim.name
    assert (
        0
        <= value(after, "scaledeck_cluster_sync_age_seconds", "scaledeck_cluster_sync_age_seconds", cluster=cluster)
        < 60
    )
    assert value(after, "scaledeck_cluster_sync_up", "scaledeck_cluster_sync_up", cluster=cluster) == 1
    assert (
        value(
            after,
            "scaledeck_cluster_sync_duration_seconds",
            "scaledeck_cluster_sync_duration_seconds_count",
            cluster=cluster,
        )
        == 1
    )
    assert ("scaledeck_cluster_sync_errors_total", (("cluster", cluster),)) in after["scaledeck_cluster_sync_errors"]
    assert ("scaledeck_prometheus_query_errors_total", (("cluster", cluster),)) in after[
        "scaledeck_prometheus_query_errors"
    ]
    succeeded = dict(status="succeeded", target_kind=action.target_kind)
    assert value(after, "scaledeck_scale_actions", "scaledeck_scale_actions_total", **succeeded) == 1
    assert value(after, "scaledeck_scale_action_latency_seconds", "scaledeck_scale_action_latency_seconds_count") == 1
    assert (
        value(
            after, "scaledeck_scale_action_latency_seconds", "scaledeck_scale_action_latency_seconds_bucket", le="+Inf"
        )
        == 1
    )
    mine = own_counters(tmp_path / "after")
    for task in ("fleet.tasks.sync_cluster", "scaling.tasks.apply_scale_action"):
        ran = dict(task=task, state="succeeded")
        assert (
            value(mine, "scaledeck_celery_tasks", "scaledeck_celery_tasks_total", **ran)
            == value(before, "scaledeck_celery_tasks", "scaledeck_celery_tasks_total", **ran) + 1
        )


def test_it_counts_a_failed_sync_and_reports_the_cluster_down(client, db):
    cluster = Cluster.objects.create(
        name=f"gone-{uuid.uuid4().hex[:8]}",
        backend=Cluster.Backend.KUBERNETES,
        kubeconfig_path="/nonexistent/kubeconfig",
        kube_context="nowhere",
    )
    sync_cluster.delay(cluster.id)

    families = scrape(client)

    assert (
        value(families, "scaledeck_cluster_sync_errors", "scaledeck_cluster_sync_errors_total", cluster=cluster.name)
        == 1
    )
    assert value(families, "scaledeck_cluster_sync_up", "scaledeck_cluster_sync_up", cluster=cluster.name) == 0


def test_it_counts_prometheus_query_errors_per_cluster(client, db):
    name = f"prom-{uuid.uuid4().hex[:8]}"
    backend = ObservedPrometheusBackend(cluster_name=name, url="http://127.0.0.1:9/", timeout_seconds=1)
    with pytest.raises(BackendError):
        backend.gpu_utilization(["node-a"])

    families = scrape(client)

    assert (
        value(families, "scaledeck_prometheus_query_errors", "scaledeck_prometheus_query_errors_total", cluster=name)
        == 1
    )
    assert (
        value(
            families,
            "scaledeck_prometheus_query_duration_seconds",
            "scaledeck_prometheus_query_duration_seconds_count",
            cluster=name,
        )
        == 1
    )


def test_it_tells_firings_on_time_from_late_and_missed_ones(db, tmp_path):
    before = own_counters(tmp_path / "before")
    now = datetime.now(UTC)
    metrics.prescale_firings_observed(
        [
            Firing(1, now - timedelta(seconds=10), 1),
            Firing(2, now - timedelta(minutes=7), 2),
            Firing(3, now - timedelta(minutes=20), 3, attempt=2),  # a retry is not a new firing
            Firing(4, now - timedelta(hours=3), None, "missed", missed=True),
        ],
        now=now,
    )
    after = own_counters(tmp_path / "after")
    for outcome in ("on_time", "late", "missed"):
        assert value(after, "scaledeck_prescale_firings", "scaledeck_prescale_firings_total", outcome=outcome) == (
            value(before, "scaledeck_prescale_firings", "scaledeck_prescale_firings_total", outcome=outcome) + 1
        )


def test_it_adds_up_counters_written_by_another_process(client, db, settings):
    task = f"tests.other_process_{uuid.uuid4().hex[:8]}"
    code = (
        "import django; django.setup(); from core import metrics; "
        f"metrics.celery_task_observed(task={task!r}, state='failed')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SCALEDECK_METRICS_DIR": str(settings.SCALEDECK_METRICS_DIR),
    }
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    families = scrape(client)

    assert value(families, "scaledeck_celery_tasks", "scaledeck_celery_tasks_total", task=task, state="failed") == 1


def test_it_requires_the_bearer_token_when_one_is_set(client, db, monkeypatch, tmp_path):
    monkeypatch.setenv("SCALEDECK_METRICS_TOKEN", "scrape-secret-1")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-1").status_code == 200

    monkeypatch.delenv("SCALEDECK_METRICS_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    monkeypatch.setenv("SCALEDECK_METRICS_TOKEN_FILE", str(token_file))
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-1").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer from-a-file").status_code == 200


def test_it_is_open_without_a_token_and_reads_the_database_in_a_bounded_number_of_queries(
    client, sim, django_assert_max_num_queries
):
    with django_assert_max_num_queries(7):  # 4 for the state, 2 for the SLO objectives (scaling/alerts)
        families = scrape(client)
    assert value(families, "scaledeck_database_up", "scaledeck_database_up") == 1
