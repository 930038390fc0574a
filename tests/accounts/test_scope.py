"""A token scoped to namespaces or clusters: 404 for others' objects in lists and details, 403 for writes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from scaling.models import PrescaleRule
from tests.factories import (
    ApiTokenFactory,
    ClusterFactory,
    ModelDeploymentFactory,
    NamespaceQuotaFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def bot(**scope) -> APIClient:
    token = ApiTokenFactory(role="admin", user=UserFactory(role="admin"), **scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.fixture
def fleet():
    prod, lab = ClusterFactory(name="prod"), ClusterFactory(name="lab")
    return {
        "search": ModelDeploymentFactory(cluster=prod, namespace="team-search", name="ranker"),
        "chat": ModelDeploymentFactory(cluster=prod, namespace="team-chat", name="llama"),
        "lab-search": ModelDeploymentFactory(cluster=lab, namespace="team-search", name="ranker"),
        "quota-search": NamespaceQuotaFactory(cluster=prod, namespace="team-search"),
        "quota-chat": NamespaceQuotaFactory(cluster=prod, namespace="team-chat"),
    }


def names(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {(row.get("cluster"), row.get("namespace"), row.get("name")) for row in response.json()["results"]}


def test_it_lists_only_the_scoped_namespace(fleet):
    client = bot(namespaces=["team-search"])

    rows = names(client.get("/api/v1/deployments/"))

    assert {(ns, name) for _, ns, name in rows} == {("team-search", "ranker")}
    assert len(rows) == 2  # in both clusters
    assert {row["namespace"] for row in client.get("/api/v1/quotas/").json()["results"]} == {"team-search"}


def test_it_answers_404_for_another_namespaces_object(fleet):
    client = bot(namespaces=["team-search"])

    assert client.get(f"/api/v1/deployments/{fleet['chat'].id}/").status_code == 404
    assert client.get(f"/api/v1/quotas/{fleet['quota-chat'].id}/").status_code == 404
    assert client.get(f"/api/v1/deployments/{fleet['search'].id}/").status_code == 200


def test_it_narrows_to_the_scoped_cluster(fleet):
    client = bot(clusters=["lab"])

    assert {c for c, _, _ in names(client.get("/api/v1/deployments/"))} == {"lab"}
    assert [row["name"] for row in client.get("/api/v1/clusters/").json()["results"]] == ["lab"]


def test_it_refuses_writes_outside_the_scope_with_403_and_changes_nothing(fleet):
    client = bot(namespaces=["team-search"])

    scale = client.post(f"/api/v1/deployments/{fleet['chat'].id}/scale/", {"replicas": 3, "reason": "x"}, format="json")
    rule = client.post(
        "/api/v1/prescale-rules/",
        {"deployment": fleet["chat"].id, "cron": "0 9 * * *", "min_replicas": 2, "duration_minutes": 60},
        format="json",
    )
    quota = client.patch(
        f"/api/v1/quotas/{fleet['quota-chat'].id}/",
        {"hard": {"requests.nvidia.com/gpu": 8}, "reason": "x"},
        format="json",
    )

    for response in (scale, rule, quota):
        assert response.status_code == 403, response.json()
        assert response.json()["detail"] == "This token's scope does not include this cluster or namespace."
    assert not PrescaleRule.objects.exists()


def test_an_unscoped_token_sees_everything(fleet):
    assert len(names(bot().get("/api/v1/deployments/"))) == 3
