import pytest
from django.urls import reverse

from tests.factories import ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(client, role):
    client.force_login(UserFactory(role=role))
    return client


def test_it_lets_an_operator_set_the_objective_and_says_it_is_interpolated(client):
    deployment = ModelDeploymentFactory()
    url = reverse("scaling:deployment-slo", args=[deployment.id])

    response = client_for(client, "operator").post(url, {"ttft_slo_seconds": "3", "reason": "new tier"})

    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 3.0
    page = client.get(reverse("fleet:deployment", args=[deployment.id])).content.decode()
    assert "between vLLM&#x27;s 2.5 s and 5 s buckets" in page


def test_it_resets_to_the_default_when_empty(client):
    deployment = ModelDeploymentFactory(ttft_slo_seconds=1.0)

    client_for(client, "operator").post(
        reverse("scaling:deployment-slo", args=[deployment.id]), {"ttft_slo_seconds": "", "reason": "back to default"}
    )

    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "is not a number of seconds"),
        ("0", "between 1 ms and 600 s"),
        ("9999", "between 1 ms and 600 s"),
        ("0.0001", "between 1 ms and 600 s"),
        ("nan", "between 1 ms and 600 s"),
    ],
)
def test_it_shows_bad_values_inline_and_changes_nothing(client, value, message):
    deployment = ModelDeploymentFactory(ttft_slo_seconds=1.0)

    response = client_for(client, "operator").post(
        reverse("scaling:deployment-slo", args=[deployment.id]), {"ttft_slo_seconds": value, "reason": "r"}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 1.0


def test_it_refuses_a_viewer(client):
    deployment = ModelDeploymentFactory(ttft_slo_seconds=1.0)

    response = client_for(client, "viewer").post(
        reverse("scaling:deployment-slo", args=[deployment.id]), {"ttft_slo_seconds": "5"}
    )

    assert response.status_code == 403
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 1.0


def test_it_audits_who_changed_the_objective_from_what_to_what_and_why(client):
    from fleet.models import SloChange

    deployment = ModelDeploymentFactory(ttft_slo_seconds=2.0)
    operator = UserFactory(username="olga", role="operator")
    client.force_login(operator)
    url = reverse("scaling:deployment-slo", args=[deployment.id])

    client.post(url, {"ttft_slo_seconds": "5", "reason": "batch tier: latency matters less"})
    client.post(url, {"ttft_slo_seconds": "5", "reason": "same again"})  # nothing changes, nothing audited

    change = SloChange.objects.get()
    assert (change.deployment, change.actor_user, change.actor_label) == (deployment, operator, "olga")
    assert (change.before_seconds, change.after_seconds) == (2.0, 5.0)
    assert change.reason == "batch tier: latency matters less"
    page = client.get(reverse("fleet:deployment", args=[deployment.id])).content.decode()
    assert "2.00 s → 5.00 s by olga" in page and "batch tier: latency matters less" in page


def test_it_refuses_a_change_without_a_reason_and_changes_nothing(client):
    from fleet.models import SloChange

    deployment = ModelDeploymentFactory(ttft_slo_seconds=2.0)

    response = client_for(client, "operator").post(
        reverse("scaling:deployment-slo", args=[deployment.id]), {"ttft_slo_seconds": "5", "reason": "  "}
    )

    assert response.status_code == 400 and "a reason is required" in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 2.0 and not SloChange.objects.exists()
