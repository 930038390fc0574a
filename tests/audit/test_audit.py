"""The one audit: rule, SLO, quota and token changes with before and after, cluster writes linked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.audit import audit_record
from accounts.models import AuditKind
from fleet.services import deployment_slo_set
from scaling.alerts.models import Alert, Receiver
from scaling.models import PrescaleRule, ScaleAction
from tests.factories import ApiTokenFactory, AutoscalerFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = APIClient()
    client.force_login(UserFactory(username="root", role="admin"))
    return client


def audit(client, query="") -> list[dict]:
    response = client.get(f"/api/v1/audit/{query}")
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_it_records_a_rules_life_from_the_bot_that_changed_it(admin_client):
    dep = ModelDeploymentFactory(cluster__name="prod", namespace="llm", name="ranker")
    AutoscalerFactory(deployment=dep, min_replicas=1, max_replicas=8)
    token = ApiTokenFactory(role="operator", name="search-bot")
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")

    created = bot.post(
        "/api/v1/prescale-rules/",
        {"deployment": dep.id, "cron": "0 9 * * 1-5", "min_replicas": 3, "duration_minutes": 60},
        format="json",
    )
    assert created.status_code == 201, created.json()
    rule_id = created.json()["id"]
    assert bot.patch(f"/api/v1/prescale-rules/{rule_id}/", {"min_replicas": 4}, format="json").status_code == 200
    assert bot.patch(f"/api/v1/prescale-rules/{rule_id}/", {"enabled": False}, format="json").status_code == 200
    assert bot.delete(f"/api/v1/prescale-rules/{rule_id}/").status_code == 204

    rows = audit(admin_client, "?kind=prescale_rule&actor=search-bot")
    assert [r["reason"] for r in rows] == ["rule deleted", "rule disabled", "rule edited", "rule created"]
    assert {r["object"] for r in rows} == {f"pre-scale rule #{rule_id}"}
    deleted, disabled, edited, created_row = rows
    assert created_row["before"] is None and created_row["after"]["deployment"] == "prod/llm/ranker"
    assert (edited["before"]["min_replicas"], edited["after"]["min_replicas"]) == (3, 4)
    assert (disabled["before"]["enabled"], disabled["after"]["enabled"]) == (True, False)
    assert deleted["after"] is None and set(rows[0]) == {
        "id",
        "at",
        "actor",
        "kind",
        "object",
        "before",
        "after",
        "reason",
        "action_url",
    }


def test_it_lists_slo_changes_and_cluster_writes_with_links_newest_first(admin_client):
    dep = ModelDeploymentFactory(cluster__name="prod", namespace="llm", name="llama")
    alice = UserFactory(username="alice", role="operator")
    start = timezone.now() - timedelta(hours=1)
    with time_machine.travel(start, tick=False):
        action = ScaleAction.objects.create(
            actor_user=alice,
            actor_label="alice",
            actor_key=f"user:{alice.pk}",
            source=ScaleAction.Source.UI,
            cluster=dep.cluster,
            namespace="llm",
            deployment=dep,
            target_kind="scaledobject",
            target_name="llama",
            before={"min_replicas": 1},
            after={"min_replicas": 4},
            reason="launch",
        )
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        quota = ScaleAction.objects.create(
            actor_label="bot:ci",
            actor_key="token:9",
            source=ScaleAction.Source.API,
            cluster=dep.cluster,
            namespace="llm",
            operation=ScaleAction.Operation.QUOTA,
            target_kind="quota",
            target_name="gpu-quota",
            before={"requests.nvidia.com/gpu": 8},
            after={"requests.nvidia.com/gpu": 16},
            reason="more",
        )
    deployment_slo_set(
        deployment=dep, seconds=1.5, reason="tighter for launch", actor_user=alice, now=start + timedelta(minutes=30)
    )

    rows = audit(admin_client)

    assert [r["kind"] for r in rows] == ["slo", "quota", "scale_action"]
    slo = rows[0]
    assert slo["actor"] == "alice" and slo["object"] == "prod/llm/llama"
    assert slo["before"] == {"ttft_p95_seconds": None} and slo["after"] == {"ttft_p95_seconds": 1.5}
    scale = next(r for r in rows if r["kind"] == "scale_action")
    assert scale["action_url"] == f"/scaling/actions/{action.pk}/" and scale["after"] == {"min_replicas": 4}
    assert next(r for r in rows if r["kind"] == "quota")["id"] == f"action-{quota.pk}"
    assert [r["kind"] for r in audit(admin_client, "?actor=alice")] == ["slo", "scale_action"]
    assert [r["kind"] for r in audit(admin_client, "?kind=quota")] == ["quota"]
    since = (start + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    assert [r["kind"] for r in audit(admin_client, f"?since={since}")] == ["slo"]


def test_it_pages_across_sources_in_time_order(admin_client):
    base = timezone.now() - timedelta(days=1)
    for i in range(5):
        with time_machine.travel(base + timedelta(minutes=i), tick=False):
            audit_record(
                actor="alice",
                kind=AuditKind.RECEIVER,
                object=f"receiver r{i}",
                before=None,
                after={"url": "https://example.com"},
                reason="",
            )

    first = admin_client.get("/api/v1/audit/?limit=2").json()
    second = admin_client.get("/api/v1/audit/?limit=2&offset=2").json()

    assert first["count"] == 5
    assert [r["object"] for r in first["results"] + second["results"]] == [
        "receiver r4",
        "receiver r3",
        "receiver r2",
        "receiver r1",
    ]


def test_it_refuses_an_unknown_filter_or_kind_by_name(admin_client):
    unknown = admin_client.get("/api/v1/audit/?kindd=token")
    bad_kind = admin_client.get("/api/v1/audit/?kind=rules")

    assert unknown.status_code == 400 and "unknown filter kindd" in str(unknown.json())
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()


def test_the_page_shows_the_changes_to_a_viewer():
    audit_record(
        actor="alice",
        kind=AuditKind.TOKEN,
        object="token sdk_abcd1234… (ci)",
        before=None,
        after={"role": "viewer"},
        reason="token issued",
    )
    client = APIClient()
    client.force_login(UserFactory(role="viewer"))

    response = client.get("/audit/?kind=token")

    assert response.status_code == 200
    assert "token sdk_abcd1234… (ci)" in response.content.decode() and "token issued" in response.content.decode()


def test_a_scoped_token_reads_only_its_namespaces_changes():
    dep = ModelDeploymentFactory(cluster__name="prod", namespace="team-search", name="ranker")
    other = ModelDeploymentFactory(cluster=dep.cluster, namespace="team-chat", name="llama")
    alice = UserFactory(username="alice", role="operator")
    deployment_slo_set(deployment=dep, seconds=1.5, reason="launch", actor_user=alice)
    deployment_slo_set(deployment=other, seconds=2.5, reason="relax", actor_user=alice)
    audit_record(actor="root", kind=AuditKind.TOKEN, object="token x", before=None, after={}, reason="")
    token = ApiTokenFactory(role="viewer", namespaces=["team-search"])
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")

    assert [r["object"] for r in audit(bot)] == ["prod/team-search/ranker"]


def _bot(role: str, name: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role=role, name=name).raw}")
    return client


def test_it_records_a_receivers_life_by_the_bot_that_changed_it_without_the_url(admin_client):
    url = "https://hooks.slack.com/services/T000/B000/very-secret"
    bot = _bot("admin", "pager-bot")
    created = bot.post(
        "/api/v1/receivers/", {"name": "oncall", "kind": "slack", "url": url, "severities": ["page"]}, format="json"
    )
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    assert bot.patch(f"/api/v1/receivers/{rid}/", {"namespaces": ["team-a"]}, format="json").status_code == 200
    assert (
        bot.post("/api/v1/receivers/", {"name": "oncall", "kind": "slack", "url": url}, format="json").status_code
        == 400
    )  # a refused change is not in the audit
    assert bot.delete(f"/api/v1/receivers/{rid}/").status_code == 204

    rows = audit(admin_client, "?kind=receiver")

    assert [(r["actor"], r["object"]) for r in rows] == [("pager-bot", "receiver oncall")] * 3
    deleted, edited, created_row = rows
    assert created_row["before"] is None and created_row["after"]["severities"] == ["page"]
    assert created_row["after"]["url"] == "https://hooks.slack.com/…"
    assert (edited["before"]["namespaces"], edited["after"]["namespaces"]) == ([], ["team-a"])
    assert deleted["before"]["namespaces"] == ["team-a"] and deleted["after"] is None
    assert "very-secret" not in str(admin_client.get("/api/v1/audit/").json())


def test_the_receivers_page_records_its_admin_as_the_actor():
    client = APIClient()
    client.force_login(UserFactory(username="root", role="admin"))
    client.post(
        "/scaling/alerts/receivers/",
        {"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/x", "events": ["alerts"]},
    )
    rid = Receiver.objects.get(name="ops").id
    client.post("/scaling/alerts/receivers/", {"delete": rid})

    rows = audit(client, "?kind=receiver&actor=root")

    assert [(r["before"] is None, r["after"] is None) for r in rows] == [(False, True), (True, False)]


def test_it_records_silences_and_acknowledgements_by_whoever_made_them(admin_client):
    deployment = ModelDeploymentFactory(cluster__name="prod", namespace="llm", name="llama")
    alert = Alert.objects.create(
        cluster=deployment.cluster,
        rule="slo_burn_page",
        severity="page",
        deployment=deployment,
        fingerprint="f1",
        summary="TTFT burning",
    )
    bot = _bot("operator", "oncall-bot")
    assert bot.post(f"/api/v1/alerts/{alert.id}/acknowledge/", {"reason": "looking"}, format="json").status_code == 200
    assert (
        bot.post(
            f"/api/v1/alerts/{alert.id}/silence/", {"minutes": 90, "reason": "known rollout"}, format="json"
        ).status_code
        == 201
    )
    assert (
        bot.post(f"/api/v1/alerts/{alert.id}/silence/", {"minutes": 0, "reason": "x"}, format="json").status_code == 400
    )
    person = APIClient()
    person.force_login(UserFactory(username="otto", role="operator"))
    person.post(f"/scaling/alerts/{alert.id}/act/", {"do": "silence", "minutes": "30", "reason": "still rolling"})

    rows = audit(admin_client, "?kind=silence")

    label = f"alert #{alert.id} slo_burn_page on prod/llm/llama"
    assert [(r["actor"], r["object"], r["reason"]) for r in rows] == [
        ("otto", label, "still rolling"),
        ("oncall-bot", label, "known rollout"),
        ("oncall-bot", label, "looking"),
    ]
    assert rows[2]["before"] == {"acknowledged": False} and rows[2]["after"] == {"acknowledged": True}
    assert rows[1]["before"] is None and rows[1]["after"]["minutes"] == 90
    assert [r["kind"] for r in audit(admin_client, "?actor=oncall-bot")] == ["silence", "silence"]


def test_it_records_an_attainment_target_change_as_an_slo_change(admin_client):
    deployment = ModelDeploymentFactory(cluster__name="prod", namespace="llm", name="llama")
    bot = _bot("operator", "slo-bot")

    answer = bot.patch(
        f"/api/v1/deployments/{deployment.id}/slo/", {"attainment": 0.995, "reason": "launch"}, format="json"
    )

    assert answer.status_code == 200, answer.json()
    (row,) = audit(admin_client, "?kind=slo")
    assert (row["actor"], row["object"], row["reason"]) == ("slo-bot", "prod/llm/llama", "launch")
    assert row["before"] == {"attainment": 0.99} and row["after"] == {"attainment": 0.995}


def test_the_page_words_kinds_and_values_as_people_read_them():
    audit_record(
        actor="otto",
        kind=AuditKind.SILENCE,
        object="alert #7 slo_burn_page on prod/llm/llama",
        before={"acknowledged": False},
        after={"acknowledged": True},
        reason="looking",
    )
    audit_record(
        actor="root",
        kind=AuditKind.RECEIVER,
        object="receiver oncall",
        before=None,
        after={"severities": ["page", "ticket"], "namespaces": []},
        reason="",
    )
    client = APIClient()
    client.force_login(UserFactory(role="viewer"))

    page = client.get("/audit/").content.decode()

    assert "alert silence or acknowledgement" in page and "alert receiver" in page
    assert "acknowledged: no" in page and "acknowledged: yes" in page
    assert "severities: page, ticket" in page and "namespaces: —" in page
    assert "True" not in page and "[&#x27;page&#x27;" not in page and ">receiver<" not in page


def test_rules_changed_in_the_admin_site_are_audited_with_the_admin_as_actor(admin_client):
    dep = ModelDeploymentFactory(cluster__name="prod", namespace="llm", name="ranker")
    AutoscalerFactory(deployment=dep, min_replicas=1, max_replicas=8)
    site = APIClient()
    site.force_login(UserFactory(username="ada", role="admin", is_staff=True, is_superuser=True))
    form = {
        "deployment": str(dep.id),
        "cron": "0 9 * * 1-5",
        "timezone": "UTC",
        "min_replicas": "3",
        "duration_minutes": "60",
        "enabled": "on",
    }

    assert site.post("/admin/scaling/prescalerule/add/", form).status_code == 302
    rule = PrescaleRule.objects.get()
    assert rule.created_by.username == "ada"
    assert site.post(f"/admin/scaling/prescalerule/{rule.id}/change/", {**form, "min_replicas": "5"}).status_code == 302
    assert site.post(f"/admin/scaling/prescalerule/{rule.id}/delete/", {"post": "yes"}).status_code == 302

    rows = audit(admin_client, "?kind=prescale_rule")
    assert [(r["actor"], r["reason"]) for r in rows] == [
        ("ada", "rule deleted"),
        ("ada", "rule edited"),
        ("ada", "rule created"),
    ]
    assert (rows[1]["before"]["min_replicas"], rows[1]["after"]["min_replicas"]) == (3, 5)
    assert not PrescaleRule.objects.exists()


def test_it_filters_by_object_and_time_window(admin_client):
    base = timezone.now() - timedelta(hours=3)
    for i, name in enumerate(["receiver oncall", "receiver ops", "token sdk_1… (ci)"]):
        with time_machine.travel(base + timedelta(hours=i), tick=False):
            audit_record(
                actor="root",
                kind=AuditKind.RECEIVER if "receiver" in name else AuditKind.TOKEN,
                object=name,
                before=None,
                after={},
                reason="",
            )

    def objects(query):
        return [r["object"] for r in audit(admin_client, query)]

    assert objects("?object=RECEIVER") == ["receiver ops", "receiver oncall"]
    half_past = (base + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert objects(f"?until={half_past}") == ["receiver oncall"]
    assert objects(f"?object=receiver&since={half_past}") == ["receiver ops"]
