"""The repartitioning pages: apply from the plan, follow the steps, stop and resume."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mig.models import MigApplication
from tests.factories import ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db


def test_an_operator_applies_a_node_and_follows_its_steps(operator_client, plan):
    page = operator_client.get(reverse("mig:plan", args=[plan.id])).content.decode()
    assert "Repartition a100-0" in page

    response = operator_client.post(reverse("mig:plan-apply", args=[plan.id]), {"node": "a100-0", "reason": "pack"})

    application = MigApplication.objects.get()
    assert response.status_code == 302 and response.url == reverse("mig:application", args=[application.id])
    html = operator_client.get(response.url).content.decode()
    for text in [
        "Cordon the node",
        "Drain its pods through the eviction API",
        "Set nvidia.com/mig.config",
        "Wait for the GPU operator",
        'hx-trigger="every 2s"',
        "Stop after the current step",
    ]:
        assert text in html, text

    operator_client.post(reverse("mig:application-stop", args=[application.id]))
    application.refresh_from_db()
    assert application.status == "paused" and application.error == "stopped by otto; resume to go on"
    html = operator_client.get(reverse("mig:application", args=[application.id])).content.decode()
    assert "Resume where it stopped" in html and "every 2s" not in html


def test_a_refusal_shows_on_the_plan_and_stores_nothing(operator_client, plan):
    deployment = ModelDeploymentFactory(cluster=plan.cluster, name="solo")
    PodFactory(deployment=deployment, node=plan.cluster.nodes.get(name="a100-0"))
    response = operator_client.post(reverse("mig:plan-apply", args=[plan.id]), {"node": "a100-0", "reason": "pack"})
    assert response.status_code == 409
    assert "would leave llm/solo with 0 ready replicas, below its floor of 1" in response.content.decode()
    assert not MigApplication.objects.exists()


def test_viewers_cannot_apply(viewer_client, plan):
    page = viewer_client.get(reverse("mig:plan", args=[plan.id])).content.decode()
    assert "Repartition a100-0" not in page
    response = viewer_client.post(reverse("mig:plan-apply", args=[plan.id]), {"node": "a100-0", "reason": "pack"})
    assert response.status_code == 403 and not MigApplication.objects.exists()
