"""The doctor page: counts per kind, the findings with their fix, dismissing with a reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mig.models import FindingDismissal
from tests.factories import ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mistakes(fake_metrics):
    grace = ModelDeploymentFactory(name="grace", termination_grace_seconds=30)
    rollout = ModelDeploymentFactory(cluster=grace.cluster, name="rollout", max_unavailable="1")
    for d in (grace, rollout):
        PodFactory(deployment=d)
    return grace, rollout


def test_it_lists_findings_with_counts_per_kind(viewer_client, mistakes):
    html = viewer_client.get(reverse("mig:doctor")).content.decode()
    assert 'data-kind="termination_grace_short"><span class="mono">termination_grace_short</span> 1' in html
    assert 'data-kind="max_unavailable"><span class="mono">max_unavailable</span> 1' in html
    assert "terminationGracePeriodSeconds is 30 s" in html and "llm/rollout" in html
    assert "Dismiss</button>" not in html  # viewers cannot

    only = viewer_client.get(reverse("mig:doctor") + "?kind=max_unavailable").content.decode()
    assert "llm/rollout" in only and "llm/grace" not in only


def test_an_operator_dismisses_a_finding_with_a_reason(operator_client, mistakes):
    grace, _ = mistakes
    refused = operator_client.post(
        reverse("mig:doctor-dismiss"), {"deployment": grace.id, "kind": "termination_grace_short", "reason": ""}
    )
    assert refused.status_code == 400 and "say why" in refused.content.decode()

    response = operator_client.post(
        reverse("mig:doctor-dismiss"),
        {"deployment": grace.id, "kind": "termination_grace_short", "reason": "short answers only"},
    )

    assert response.status_code == 302
    assert FindingDismissal.objects.get().actor_label == "otto"
    html = operator_client.get(reverse("mig:doctor")).content.decode()
    assert "terminationGracePeriodSeconds is 30 s" not in html
    assert "by otto" in html and "short answers only" in html


def test_viewers_cannot_dismiss(viewer_client, mistakes):
    grace, _ = mistakes
    response = viewer_client.post(
        reverse("mig:doctor-dismiss"), {"deployment": grace.id, "kind": "termination_grace_short", "reason": "x"}
    )
    assert response.status_code == 403 and not FindingDismissal.objects.exists()
