"""Tokens over the API (admins issue and revoke; others see their own) and the audit list."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_an_admin_issues_a_token_and_sees_its_secret_once():
    admin = UserFactory(username="root", role="admin")
    UserFactory(username="search", role="operator")

    response = as_user(admin).post(
        "/api/v1/tokens/",
        {
            "user": "search",
            "name": "search-bot",
            "role": "operator",
            "namespaces": ["team-search"],
            "expires_days": None,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["token"].startswith(body["prefix"]) and body["namespaces"] == ["team-search"]
    assert body["expires_at"] is None and body["state"] == "active"
    listed = as_user(admin).get("/api/v1/tokens/").json()["results"]
    assert [row["name"] for row in listed] == ["search-bot"] and "token" not in listed[0]


def test_others_see_only_their_own_tokens_and_cannot_issue_or_revoke():
    mine = ApiTokenFactory(role="operator", name="mine")
    theirs = ApiTokenFactory(role="viewer", name="theirs")
    client = as_user(mine.user)

    assert [row["name"] for row in client.get("/api/v1/tokens/").json()["results"]] == ["mine"]
    assert client.get(f"/api/v1/tokens/{theirs.pk}/").status_code == 404
    assert (
        client.post(
            "/api/v1/tokens/", {"user": mine.user.username, "name": "x", "role": "viewer"}, format="json"
        ).status_code
        == 403
    )
    assert client.post(f"/api/v1/tokens/{mine.pk}/revoke/", {}, format="json").status_code == 403


def test_an_admin_revokes_a_token_and_the_audit_shows_it():
    admin = UserFactory(username="root", role="admin")
    token = ApiTokenFactory(role="viewer", name="ci")

    response = as_user(admin).post(f"/api/v1/tokens/{token.pk}/revoke/", {"reason": "leaked in a log"}, format="json")

    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert ApiToken.objects.get(pk=token.pk).revoked_by == admin
    audit = as_user(admin).get("/api/v1/audit/?kind=token&actor=root").json()
    assert audit["count"] == 1
    row = audit["results"][0]
    assert row["reason"] == "leaked in a log" and row["before"]["revoked_at"] is None
    assert row["after"]["revoked_at"] is not None


def test_a_token_above_its_users_role_is_refused_with_a_reason():
    admin = UserFactory(username="root", role="admin")
    UserFactory(username="vera", role="viewer")

    response = as_user(admin).post("/api/v1/tokens/", {"user": "vera", "name": "x", "role": "admin"}, format="json")

    assert response.status_code == 400
    assert "more rights than its user" in response.json()["detail"]
    assert not ApiToken.objects.exists()
