"""Rate limits: 429 with Retry-After past the scale, write and read rates; sign-in lockout per user and address."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ApiTokenFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


def bot(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def scale(client, dep):
    # A request the policy refuses (no autoscaler): still a scale request, counted by the limit.
    return client.post(
        f"/api/v1/deployments/{dep.id}/scale/", {"replicas": 2, "reason": "x", "dry_run": True}, format="json"
    )


def test_it_answers_429_with_retry_after_past_the_scale_rate(settings):
    settings.SCALEDECK_THROTTLE_SCALE = "2/min"
    dep = ModelDeploymentFactory()
    token = ApiTokenFactory(role="operator")
    client = bot(token)

    answers = [scale(client, dep).status_code for _ in range(2)]
    refused = scale(client, dep)

    assert 429 not in answers
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["detail"]
    # Another token of another user has its own count; reads are not scale requests.
    assert scale(bot(ApiTokenFactory(role="operator")), dep).status_code != 429
    assert client.get("/api/v1/deployments/").status_code == 200


def test_the_write_rate_counts_all_of_a_users_tokens_together(settings):
    settings.SCALEDECK_THROTTLE_WRITE = "3/min"
    user = UserFactory(role="operator")
    first, second = ApiTokenFactory(user=user, role="operator"), ApiTokenFactory(user=user, role="operator")
    dep = ModelDeploymentFactory()

    codes = [scale(bot(t), dep).status_code for t in (first, second, first)]
    refused = scale(bot(second), dep)

    assert 429 not in codes
    assert refused.status_code == 429 and "Retry-After" in refused


def test_reads_have_their_own_limit(settings):
    settings.SCALEDECK_THROTTLE_READ = "2/min"
    client = bot(ApiTokenFactory(role="viewer"))

    codes = [client.get("/api/v1/clusters/").status_code for _ in range(3)]

    assert codes == [200, 200, 429]


def test_sign_in_locks_a_user_and_address_after_repeated_failures(settings):
    settings.SCALEDECK_LOGIN_MAX_FAILURES = 3
    UserFactory(username="alice", role="viewer")  # password "pw"
    client = Client(REMOTE_ADDR="10.0.0.7")

    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    locked = client.post("/accounts/login/", {"username": "alice", "password": "pw"})

    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-in attempts for alice from your address. Try again in 15 minutes." in (
        locked.content.decode()
    )
    assert "_auth_user_id" not in client.session
    # The same user from another address, and another user from this one, may still sign in.
    assert (
        Client(REMOTE_ADDR="10.0.0.8").post("/accounts/login/", {"username": "alice", "password": "pw"}).status_code
        == 302
    )
    UserFactory(username="bob", role="viewer")
    assert client.post("/accounts/login/", {"username": "bob", "password": "pw"}).status_code == 302
