"""Request limits: body size and JSON depth are refused before anything parses or recurses."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.limits import json_depth_exceeds
from scaling.models import PrescaleRule, ScaleAction
from tests.factories import ApiTokenFactory, ModelDeploymentFactory, NamespaceQuotaFactory, UserFactory

DEEP = "[" * 1100 + "]" * 1100


@pytest.mark.parametrize(
    ("text", "depth", "exceeds"),
    [
        ("[]", 1, False),
        ("[[]]", 1, True),
        ('{"a": {"b": [1, 2]}}', 3, False),
        ('{"a": {"b": [1, 2]}}', 2, True),
        ('["[[[[[[", "{{{{{"]', 1, False),  # brackets inside strings do not count
        ('["\\"[[[[["]', 1, False),  # nor after an escaped quote
        ("[" * 33 + "]" * 33, 32, True),
        ("[" * 32 + "]" * 32, 32, False),
        ('"unterminated [[[[', 1, True),  # malformed: counted as seen, the parser refuses it anyway
        ("", 32, False),
    ],
)
def test_it_measures_json_depth_on_the_raw_text(text, depth, exceeds):
    assert json_depth_exceeds(text.encode(), depth) is exceeds


def test_it_measures_a_megabyte_of_nesting_without_recursing():
    assert json_depth_exceeds(b"[" * 1_000_000, 32) is True
    assert json_depth_exceeds(b"[" + b"[]," * 300_000 + b"[]]", 32) is False


def bot(role: str) -> APIClient:
    token = ApiTokenFactory(role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def write_endpoints() -> list[tuple[str, str]]:
    dep = ModelDeploymentFactory()
    quota = NamespaceQuotaFactory(cluster=dep.cluster, namespace=dep.namespace)
    return [
        ("post", f"/api/v1/deployments/{dep.id}/scale/"),
        ("post", "/api/v1/prescale-rules/"),
        ("patch", f"/api/v1/quotas/{quota.id}/"),
        ("post", "/api/v1/clusters/"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_it_answers_400_to_json_nested_1100_deep_on_every_write_endpoint(role):
    client = bot(role)
    for method, url in write_endpoints():
        response = getattr(client, method)(url, DEEP, content_type="application/json")

        assert response.status_code == 400, (url, response.content[:200])
        assert "nested deeper than 32 levels" in response.json()["detail"]
    assert ScaleAction.objects.count() == 0 and PrescaleRule.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_deep_json_from_a_viewer_session_before_the_csrf_check():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(role="viewer"))
    for method, url in write_endpoints():
        response = getattr(client, method)(url, DEEP, content_type="application/json")

        assert response.status_code == 400, (url, response.content[:200])


@pytest.mark.django_db
def test_it_answers_413_to_an_api_body_over_the_limit_and_writes_nothing(settings):
    settings.SCALEDECK_API_MAX_BODY_BYTES = 1000
    dep = ModelDeploymentFactory()
    body = json.dumps({"replicas": 2, "reason": "x" * 2000})

    response = bot("operator").post(f"/api/v1/deployments/{dep.id}/scale/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["detail"] == f"The request body is {len(body) / 1024:g} KB; at most 0.976562 KB is accepted."
    assert ScaleAction.objects.count() == 0


@pytest.mark.django_db
def test_it_caps_api_bodies_at_one_megabyte_by_default():
    dep = ModelDeploymentFactory()
    body = json.dumps({"replicas": 2, "reason": "x" * (1024 * 1024)})

    response = bot("operator").post(f"/api/v1/deployments/{dep.id}/scale/", body, content_type="application/json")

    assert response.status_code == 413
    assert "at most 1 MB is accepted" in response.json()["detail"]


@pytest.mark.django_db
def test_it_answers_413_to_a_page_form_over_the_limit(settings):
    settings.SCALEDECK_PAGE_MAX_BODY_BYTES = 1000
    client = Client()
    client.force_login(UserFactory(role="admin"))

    response = client.post("/scaling/rules/new/", {"cron": "0 9 * * *", "timezone": "x" * 2000})

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert PrescaleRule.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_nan_and_infinity_in_api_json():
    dep = ModelDeploymentFactory()
    for literal in ("NaN", "Infinity", "-Infinity"):
        response = bot("operator").post(
            f"/api/v1/deployments/{dep.id}/scale/",
            f'{{"replicas": {literal}, "reason": "x"}}',
            content_type="application/json",
        )

        assert response.status_code == 400, literal
    assert ScaleAction.objects.count() == 0
