"""Bearer tokens: expiry, revocation, last use, and where a token may be sent."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create, api_token_revoke
from tests.factories import ApiTokenFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_with(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_it_issues_tokens_that_expire_after_the_default_days(settings):
    settings.SCALEDECK_TOKEN_DEFAULT_DAYS = 30
    user = UserFactory(role="operator")
    now = timezone.now()

    token, raw = api_token_create(user=user, name="ci", role="viewer", now=now)

    assert token.expires_at == now + timedelta(days=30)
    assert raw.startswith("sdk_") and token.prefix == raw[:12]
    never, _ = api_token_create(user=user, name="forever", role="viewer", expires_days=None)
    assert never.expires_at is None


def test_it_refuses_an_expired_token_with_the_reason_and_logs_no_secret(caplog):
    user = UserFactory(role="viewer")
    token, raw = api_token_create(user=user, name="old", role="viewer", expires_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=2)), caplog.at_level(logging.WARNING):
        response = client_with(raw).get("/api/v1/clusters/")

    assert response.status_code == 401
    assert response.json()["detail"].startswith("This token expired on ")
    assert "expired" in caplog.text and token.prefix in caplog.text
    assert raw not in caplog.text


def test_it_refuses_a_revoked_token_with_the_reason(caplog):
    token = ApiTokenFactory(role="viewer")
    assert client_with(token.raw).get("/api/v1/clusters/").status_code == 200

    assert api_token_revoke(token=token, actor=token.user) is True
    with caplog.at_level(logging.WARNING):
        response = client_with(token.raw).get("/api/v1/clusters/")

    assert response.status_code == 401
    assert response.json()["detail"].startswith("This token was revoked on ")
    assert token.raw not in caplog.text
    assert api_token_revoke(token=token, actor=token.user) is False  # already revoked: nothing more


def test_it_refuses_an_unknown_token():
    response = client_with("sdk_" + "x" * 43).get("/api/v1/clusters/")

    assert response.status_code == 401 and response.json()["detail"] == "Invalid or revoked token."


def test_it_never_accepts_a_token_in_the_query_string():
    token = ApiTokenFactory(role="viewer")

    for name in ("token", "access_token", "api_key"):
        response = APIClient().get(f"/api/v1/clusters/?{name}={token.raw}")
        assert response.status_code == 401
        assert "Authorization header" in response.json()["detail"]


def test_it_records_last_use_and_address_at_most_once_a_minute():
    token = ApiTokenFactory(role="viewer")
    client = client_with(token.raw)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        client.get("/api/v1/clusters/", REMOTE_ADDR="10.1.2.3")
    first = ApiToken.objects.get(pk=token.pk)
    assert first.last_used_at == start and first.last_used_ip == "10.1.2.3"

    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/clusters/", REMOTE_ADDR="10.9.9.9")
    assert ApiToken.objects.get(pk=token.pk).last_used_ip == "10.1.2.3"

    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/clusters/", REMOTE_ADDR="10.9.9.9")
    later = ApiToken.objects.get(pk=token.pk)
    assert later.last_used_at == start + timedelta(seconds=61) and later.last_used_ip == "10.9.9.9"


def test_a_read_only_token_reads_but_cannot_write():
    dep = ModelDeploymentFactory()
    token = ApiTokenFactory(role="operator", read_only=True)
    client = client_with(token.raw)

    assert client.get("/api/v1/deployments/").status_code == 200
    response = client.post(f"/api/v1/deployments/{dep.id}/scale/", {"replicas": 3, "reason": "x"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "This token is read-only: it cannot change anything."
