"""The deployment page's memory panel: the need, and the inputs it came from."""

from __future__ import annotations

import pytest
from django.urls import reverse

from fleet.backends.base import DeploymentMetrics
from tests.factories import GpuNodeFactory, ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db


def test_the_deployment_page_loads_the_memory_panel(viewer_client):
    deployment = ModelDeploymentFactory()
    html = viewer_client.get(reverse("fleet:deployment", args=[deployment.id])).content.decode()
    assert f'hx-get="{reverse("mig:deployment-memory", args=[deployment.id])}"' in html


def test_it_shows_the_need_and_its_inputs_with_units(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory(
        model="meta-llama/Llama-3.1-8B-Instruct", max_model_len=8192, gpu_memory_utilization=0.95
    )
    PodFactory(deployment=deployment, node=GpuNodeFactory(cluster=deployment.cluster))
    fake_metrics.metrics[(deployment.namespace, deployment.name)] = DeploymentMetrics(kv_cache_usage=0.01)

    response = viewer_client.get(reverse("mig:deployment-memory", args=[deployment.id]))

    html = response.content.decode()
    assert response.status_code == 200
    for text in [
        "20.0 GiB</strong> per replica",
        "vLLM holds 76.0 GiB per GPU now",
        "8 billion parameters",
        "1 sequence of 8,192 tokens",
        "8,192 tokens",
        "95 %",
        "80.0 GiB",
        "1 %",
    ]:
        assert text in html, text


def test_it_says_why_the_need_is_unknown(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory(model="my-org/<b>assistant</b>")
    html = viewer_client.get(reverse("mig:deployment-memory", args=[deployment.id])).content.decode()
    assert "Not known: the parameter count is not in the model name." in html
    assert "<b>assistant" not in html and "&lt;b&gt;assistant" in html
