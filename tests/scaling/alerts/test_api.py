import pytest
from rest_framework.test import APIClient

from fleet.models import SloChange
from scaling.alerts.models import Alert, AlertNote, AlertSilence, AttainmentChange, Receiver, SloTarget
from tests.factories import ApiTokenFactory, ClusterFactory, ModelDeploymentFactory


def bot(role: str, name: str = "bot") -> APIClient:
    token = ApiTokenFactory(role=role, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def _alert(state="firing", **kw) -> Alert:
    deployment = kw.pop("deployment", None) or ModelDeploymentFactory(namespace="llm", name="llama")
    return Alert.objects.create(cluster=deployment.cluster, rule="slo_burn_page", severity="page", state=state,
                                deployment=deployment, fingerprint=f"slo_burn_page:d{deployment.id}:{state}",
                                summary="TTFT burning", **kw)  # fmt: skip


@pytest.mark.django_db
def test_it_lists_alerts_by_state_with_the_contract_fields():
    firing = _alert()
    _alert(state="resolved", deployment=firing.deployment)
    body = bot("viewer").get("/api/v1/alerts/?state=firing").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert {k: row[k] for k in ("id", "rule", "severity", "state", "deployment", "node", "ended_at", "summary")} == {
        "id": firing.id, "rule": "slo_burn_page", "severity": "page", "state": "firing", "deployment": "llm/llama",
        "node": "", "ended_at": None, "summary": "TTFT burning"}  # fmt: skip
    assert row["started_at"]
    assert bot("viewer").get("/api/v1/alerts/?state=sleeping").status_code == 400


@pytest.mark.django_db
def test_operators_acknowledge_and_silence_with_an_audit_and_viewers_cannot():
    alert = _alert()
    assert bot("viewer", "v").post(f"/api/v1/alerts/{alert.id}/acknowledge/", {}, format="json").status_code == 403
    op = bot("operator", "op")
    assert op.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {"reason": "looking"}, format="json").status_code == 200
    answer = op.post(f"/api/v1/alerts/{alert.id}/silence/", {"minutes": 90, "reason": "known rollout"}, format="json")
    assert answer.status_code == 201
    assert AlertSilence.objects.get().reason == "known rollout"
    assert list(AlertNote.objects.order_by("at").values_list("kind", "actor_label")) == [
        ("acknowledged", "bot:op"),
        ("silenced", "bot:op"),
    ]
    refused = op.post(f"/api/v1/alerts/{alert.id}/silence/", {"minutes": 0, "reason": "x"}, format="json")
    assert refused.status_code == 400
    assert AlertSilence.objects.count() == 1


@pytest.mark.django_db
def test_receivers_are_admin_only_and_never_show_the_url():
    url = "https://hooks.slack.com/services/T000/B000/very-secret"
    assert bot("operator", "op").get("/api/v1/receivers/").status_code == 403
    admin = bot("admin", "adm")
    created = admin.post("/api/v1/receivers/", {"name": "oncall", "kind": "slack", "url": url,
                                                "severities": ["page"], "namespaces": [],
                                                "events": ["alerts", "actions"]}, format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    assert "very-secret" not in created.content.decode()
    rid = created.json()["id"]
    listed = admin.get("/api/v1/receivers/").content.decode()
    assert "very-secret" not in listed and "hooks.slack.com" in listed
    assert admin.patch(f"/api/v1/receivers/{rid}/", {"namespaces": ["team-a"]}, format="json").json()["namespaces"] == [
        "team-a"
    ]
    assert admin.delete(f"/api/v1/receivers/{rid}/").status_code == 204
    assert not Receiver.objects.exists()


@pytest.mark.django_db
def test_a_receiver_url_that_is_not_http_is_refused_with_400():
    answer = bot("admin").post("/api/v1/receivers/", {"name": "x", "kind": "webhook", "url": "gopher://x/"},
                               format="json")  # fmt: skip
    assert answer.status_code == 400
    assert "http://" in str(answer.json())
    assert not Receiver.objects.exists()


@pytest.mark.django_db
def test_operators_set_the_slo_with_an_audit_row_for_each_change():
    deployment = ModelDeploymentFactory(cluster=ClusterFactory())
    op = bot("operator", "op")
    answer = op.patch(f"/api/v1/deployments/{deployment.id}/slo/",
                      {"ttft_p95_seconds": 2.5, "attainment": 0.995, "reason": "launch"}, format="json")  # fmt: skip
    assert answer.status_code == 200, answer.json()
    assert {k: answer.json()[k] for k in ("ttft_p95_seconds", "attainment", "budget_remaining")} == {
        "ttft_p95_seconds": 2.5,
        "attainment": 0.995,
        "budget_remaining": None,
    }
    assert bot("viewer", "v").get(f"/api/v1/deployments/{deployment.id}/slo/").json()["attainment"] == 0.995
    assert SloTarget.objects.get(deployment=deployment).attainment == 0.995
    assert AttainmentChange.objects.get().after == 0.995
    assert SloChange.objects.get().after_seconds == 2.5


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"attainment": 1.5, "reason": "x"}, {"attainment": "high", "reason": "x"},
                                  {"attainment": 0.99}, {"ttft_p95_seconds": -1, "reason": "x"},
                                  {"ttft_p95_seconds": 2.0, "attainment": 2, "reason": "x"}])  # fmt: skip
def test_a_bad_slo_changes_nothing(body):
    deployment = ModelDeploymentFactory(cluster=ClusterFactory())
    answer = bot("operator").patch(f"/api/v1/deployments/{deployment.id}/slo/", body, format="json")
    assert answer.status_code == 400
    assert not SloTarget.objects.exists() and not SloChange.objects.exists()
    assert bot("viewer", "v").patch(f"/api/v1/deployments/{deployment.id}/slo/", {"attainment": 0.9, "reason": "x"},
                                    format="json").status_code == 403  # fmt: skip


@pytest.mark.django_db
def test_the_alert_list_costs_the_same_queries_for_many_alerts(django_assert_max_num_queries):
    cluster = ClusterFactory()
    for i in range(30):
        _alert(deployment=ModelDeploymentFactory(cluster=cluster, name=f"m-{i}"))
    client = bot("viewer")
    with django_assert_max_num_queries(6):
        assert client.get("/api/v1/alerts/").json()["count"] == 30
