"""The pages over the simulated backends end to end: simulated world -> sync -> pages and fragments."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from fleet.models import Cluster, ModelDeployment
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from tests.fleet.test_views_deployment import panels_of

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def demo_cluster(db):
    from simulator.demo import demo_world

    with time_machine.travel(NOW, tick=False):
        cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED, region="us-east-1")
        DbWorldStore(cluster).replace(demo_world(seed=7, now=NOW, warmup_hours=2), seed=7)
        result = cluster_sync(cluster=cluster)
    assert result.ok, result.error
    return cluster


def test_it_shows_live_numbers_from_the_simulated_cluster(viewer_client, demo_cluster):
    with time_machine.travel(NOW, tick=False):
        html = viewer_client.get(reverse("fleet:overview")).content.decode()

    assert "metrics unavailable" not in html
    for deployment in ModelDeployment.objects.filter(cluster=demo_cluster):
        assert f"{deployment.namespace}/{deployment.name}" in html
    assert re.search(r'class="num slo-(ok|near|breach)"', html)
    assert "synced 0 s ago" in html


def test_it_draws_charts_from_the_simulated_history(viewer_client, demo_cluster):
    deployment = ModelDeployment.objects.filter(cluster=demo_cluster, replicas_ready__gt=0).first()

    with time_machine.travel(NOW, tick=False):
        html = viewer_client.get(reverse("deployment:charts", args=[deployment.id]), {"range": "1h"})
    html = html.content.decode()

    panels = panels_of(html)
    queue = next(t for t in panels["Requests waiting and running"]["data"] if t["name"] == "waiting (req)")
    assert any(v is not None for v in queue["y"])
    assert {"desired (replicas)", "ready (replicas)"} <= {t["name"] for t in panels["Replicas"]["data"]}


def test_it_draws_the_simulated_nodes_and_their_gpu_utilization(viewer_client, demo_cluster):
    with time_machine.travel(NOW, tick=False):
        page = viewer_client.get(reverse("fleet:nodes")).content.decode()
        fragment = viewer_client.get(reverse("fleet:nodes-gpu-utilization")).content.decode()

    assert 'class="slice held"' in page
    assert "metrics unavailable" not in fragment
    assert re.search(r'hx-swap-oob="true"[^>]*>\d+%</span>', fragment)
