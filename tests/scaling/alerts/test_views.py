import pytest
from django.utils import timezone

from scaling.alerts.models import Alert, AlertSilence, ClusterEvaluation, Receiver, SloTarget
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory


@pytest.fixture
def firing():
    deployment = ModelDeploymentFactory(cluster=ClusterFactory(name="prod"), namespace="llm", name="<b>llama</b>")
    return Alert.objects.create(cluster=deployment.cluster, rule="slo_burn_page", severity="page",
                                deployment=deployment, fingerprint="f", summary="TTFT burning at 20.0x")  # fmt: skip


@pytest.mark.django_db
def test_the_alerts_page_lists_firing_alerts_and_says_when_state_is_unknown(client, firing):
    ClusterEvaluation.objects.create(
        cluster=firing.cluster,
        status="unknown",
        evaluated_at=timezone.now(),
        unknown_since=timezone.now(),
        reason="Prometheus refused the connection",
    )
    client.force_login(UserFactory(role="viewer"))
    html = client.get("/scaling/alerts/").content.decode()
    assert "TTFT burning at 20.0x" in html
    assert "alert state unknown" in html and "Prometheus refused the connection" in html
    assert "<b>llama</b>" not in html and "&lt;b&gt;llama&lt;/b&gt;" in html


@pytest.mark.django_db
def test_an_operator_silences_from_the_alert_page(client, firing):
    client.force_login(UserFactory(role="operator"))
    answer = client.post(f"/scaling/alerts/{firing.id}/act/", {"do": "silence", "minutes": "30", "reason": "deploy"})
    assert answer.status_code == 302
    assert AlertSilence.objects.get().reason == "deploy"
    client.force_login(UserFactory(role="viewer", username="v"))
    assert client.post(f"/scaling/alerts/{firing.id}/act/", {"do": "acknowledge"}).status_code == 403


@pytest.mark.django_db
def test_receivers_page_is_for_admins_and_refuses_a_non_http_url(client):
    client.force_login(UserFactory(role="operator"))
    assert client.get("/scaling/alerts/receivers/").status_code == 403
    client.force_login(UserFactory(role="admin", username="root"))
    answer = client.post("/scaling/alerts/receivers/", {"name": "x", "kind": "webhook", "url": "ftp://x/",
                                                       "events": ["alerts"]})  # fmt: skip
    assert answer.status_code == 400
    assert "must start with http:// or https://" in answer.content.decode()
    assert not Receiver.objects.exists()


@pytest.mark.django_db
def test_the_alerts_page_lists_error_budgets_lowest_first(client, firing):
    SloTarget.objects.create(deployment=firing.deployment, attainment=0.995, budget_remaining=-0.25,
                             attained=0.99375, burn_rate_1h=20.0, evaluated_at=timezone.now())  # fmt: skip
    client.force_login(UserFactory(role="viewer"))
    html = client.get("/scaling/alerts/").content.decode()
    assert "99.5 % of minutes" in html and "99.38 % of minutes" in html and "-25.0 %" in html and "20.0×" in html
