"""The deployment page's "why this many replicas" panel (scaling/why_views.py)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from fleet.backends.base import DeploymentMetrics
from scaling.models import PrescaleRule, ScaleAction
from tests.factories import AutoscalerFactory, ModelDeploymentFactory
from tests.fleet.conftest import FakeMetricsBackend

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def deployment(monkeypatch):
    fake_metrics = FakeMetricsBackend()
    monkeypatch.setattr("fleet.metrics.metrics_backend", lambda cluster: fake_metrics)
    d = ModelDeploymentFactory(name="llama-8b", replicas_desired=4)
    AutoscalerFactory(deployment=d, min_replicas=1, max_replicas=4)
    fake_metrics.metrics = {("llm", "llama-8b"): DeploymentMetrics(queue_depth=40.0)}
    return d


def url(d) -> str:
    return f"/scaling/deployments/{d.id}/why/"


def test_it_says_what_binds_and_what_blocks(viewer, deployment):
    html = signed_in(viewer).get(url(deployment)).content.decode()
    assert 'Set by <strong class="binding">the autoscaler&#x27;s maximum</strong>' in html
    assert "40 against a target of 5" in html
    assert "Maximum reached: 4 of at most 4 replicas." in html


def test_it_shows_the_next_prescale_and_lets_only_operators_end_an_override(viewer, operator, deployment):
    rule = PrescaleRule.objects.create(
        deployment=deployment, cron="0 9 * * 1-5", timezone="UTC", min_replicas=3, duration_minutes=60
    )
    action = ScaleAction.objects.create(
        actor_label="alice",
        actor_key="u:1",
        source="ui",
        cluster=deployment.cluster,
        namespace="llm",
        deployment=deployment,
        request={"replicas": 4, "mode": "floor"},
        mode="floor",
        reason="launch",
        status=ScaleAction.Status.SUCCEEDED,
        expires_at=timezone.now() + timedelta(minutes=30),
    )

    as_viewer = signed_in(viewer).get(url(deployment)).content.decode()
    as_operator = signed_in(operator).get(url(deployment)).content.decode()

    assert f"Rule #{rule.id}: at least 3 replicas from" in as_viewer
    assert "floor 4</a> by alice" in as_viewer
    end = f'action="/scaling/actions/{action.id}/end/"'
    assert end not in as_viewer
    assert end in as_operator


def test_it_escapes_the_cluster_supplied_metric(viewer, deployment):
    deployment.autoscalers.update(metric="<script>x</script> > 5")
    html = signed_in(viewer).get(url(deployment)).content.decode()
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_it_needs_a_sign_in(deployment):
    assert Client().get(url(deployment)).status_code == 302


def test_the_deployment_page_loads_the_panel(viewer, deployment):
    html = signed_in(viewer).get(f"/deployments/{deployment.id}/").content.decode()
    assert f'hx-get="{url(deployment)}"' in html
