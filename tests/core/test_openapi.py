"""The OpenAPI schema is served, valid, and true: schemathesis calls every endpoint of a live server
(GETs, and the scale endpoint as dry runs) and every answer must be documented, with no 5xx."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient

from tests.factories import ApiTokenFactory, AutoscalerFactory, ClusterFactory, ModelDeploymentFactory, UserFactory

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 6  # bounded so every operation is covered in well under a minute


def test_it_serves_the_schema_as_yaml_and_json_without_signing_in():
    as_yaml = Client().get("/api/schema/")
    as_json = Client().get("/api/schema/?format=json")

    assert as_yaml.status_code == 200 and as_json.status_code == 200
    document = yaml.safe_load(as_yaml.content)
    assert document["openapi"].startswith("3.")
    assert json.loads(as_json.content)["paths"] == document["paths"]
    assert {"/api/v1/summary/", "/api/v1/deployments/{id}/scale/", "/api/v1/deployments/"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_it_describes_error_bodies_and_repeatable_filters():
    document = yaml.safe_load(Client().get("/api/schema/").content)
    listing = document["paths"]["/api/v1/deployments/"]["get"]
    scale = document["paths"]["/api/v1/deployments/{id}/scale/"]["post"]

    assert {"400", "401", "403", "404", "429"} <= set(listing["responses"])
    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(scale["responses"])
    namespace = next(p for p in listing["parameters"] if p["name"] == "namespace")
    assert namespace["schema"]["type"] == "array" and namespace["explode"] is True
    assert {"name__ic", "q", "ordering"} <= {p["name"] for p in listing["parameters"]}


def test_it_validates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_it_serves_swagger_ui_from_local_static_files():
    html = Client().get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn." not in html and "unpkg" not in html


def test_the_api_root_lists_the_endpoints():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role='viewer').raw}")

    body = client.get("/api/v1/").json()

    assert body["schema"].endswith("/api/schema/") and body["docs"].endswith("/api/docs/")
    assert {"/api/v1/summary/", "/api/v1/deployments/", "/api/v1/deployments/{pk}/scale/"} <= set(body["endpoints"])


def test_the_browsable_api_answers_a_signed_in_browser():
    client = Client()
    client.force_login(UserFactory(role="viewer"))

    response = client.get("/api/v1/clusters/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")


# ------------------------------------------------------------------- schemathesis against a live server


@pytest.fixture
def live_schema(live_server, transactional_db):
    cluster = ClusterFactory(name="prod")
    deployment = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="chat", replicas_desired=2)
    AutoscalerFactory(deployment=deployment, min_replicas=1, max_replicas=8)
    token = ApiTokenFactory(role="admin")
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    return schema, live_server.url, {"Authorization": f"Bearer {token.raw}"}


def _checks():
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_read_and_dry_run_answer_matches_the_schema(live_schema):
    schema, base_url, headers = live_schema
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    covered = set()
    for operation in operations:
        if operation.method.upper() != "GET" and not _is_scale(operation):
            continue  # writes other than dry runs would change what the next cases read
        covered.add((operation.method.upper(), operation.path))
        _exercise(operation, base_url, headers, failures)

    assert len(covered) >= 20 and covered >= DRY_RUN_WRITES
    assert failures == [], "\n\n".join(failures)


DRY_RUN_WRITES = {
    ("POST", "/api/v1/deployments/{id}/scale/"),
    ("PATCH", "/api/v1/deployments/{id}/autoscaler/"),
    ("POST", "/api/v1/advice/{id}/apply/"),
}


def _is_scale(operation) -> bool:
    """A write the test sends with `dry_run: true`, so it changes nothing the next cases read."""
    return (operation.method.upper(), operation.path) in DRY_RUN_WRITES


def _exercise(operation, base_url: str, headers: dict, failures: list[str]) -> None:
    is_scale = _is_scale(operation)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        if is_scale:
            case.body = {**(case.body if isinstance(case.body, dict) else {}), "dry_run": True}
        response = case.call(base_url=base_url, headers=headers)
        try:
            if "application/yaml" in str(response.headers.get("content-type") or response.headers.get("Content-Type")):
                # The manifests are a YAML stream (several documents); schemathesis parses YAML as one
                # document and fails on any stream. Their content is tested in tests/mig.
                assert response.status_code == 200 and len(list(yaml.safe_load_all(response.content))) > 1
                return
            case.validate_response(response, checks=_checks())
        except (AssertionError, schemathesis.checks.Failure, schemathesis.checks.FailureGroup) as exc:
            failures.append(f"{case.method} {case.formatted_path} {response.status_code}: {str(exc)[:300]}")

    run()
