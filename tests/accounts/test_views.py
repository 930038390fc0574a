"""The tokens page: admins issue (the secret shown once) and revoke; everyone else sees their own."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ApiToken
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_issues_a_token_on_the_page_and_sees_the_secret_once():
    admin = logged_in(UserFactory(username="root", role="admin"))
    UserFactory(username="search", role="operator")

    response = admin.post(
        "/tokens/",
        {"user": "search", "name": "search-bot", "role": "operator", "namespaces": "team-search", "expires_days": "30"},
    )

    assert response.status_code == 200
    token = ApiToken.objects.get()
    raw = response.context["issued"]["raw"]
    assert raw.startswith(token.prefix) and raw in response.content.decode()
    assert token.namespaces == ["team-search"] and (token.expires_at - token.created_at).days == 30
    assert raw not in admin.get("/tokens/").content.decode()


def test_an_admin_revokes_a_token_on_the_page():
    admin = logged_in(UserFactory(username="root", role="admin"))
    token = ApiTokenFactory(name="ci")

    response = admin.post(f"/tokens/{token.pk}/revoke/", {"reason": "rotated"}, follow=True)

    assert response.status_code == 200 and "revoked" in response.content.decode()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_a_viewer_sees_only_their_tokens_and_cannot_issue_or_revoke():
    mine = ApiTokenFactory(name="mine-bot")
    ApiTokenFactory(name="other-bot")
    client = logged_in(mine.user)

    page = client.get("/tokens/").content.decode()

    assert "mine-bot" in page and "other-bot" not in page and "Issue a token" not in page
    assert client.post("/tokens/", {"user": mine.user.username, "name": "x", "role": "viewer"}).status_code == 403
    assert client.post(f"/tokens/{mine.pk}/revoke/").status_code == 403
    assert ApiToken.objects.count() == 2 and not ApiToken.objects.filter(revoked_at__isnull=False).exists()
