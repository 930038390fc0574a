"""Every API list and view refuses a query parameter it does not take with a 400 naming it, not
just the lists with a FilterSet: `?namespace=team-a` on a list that cannot filter by namespace
must not answer every namespace's rules to a bot that believes it filtered."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from scaling.alerts.models import Alert
from tests.factories import ApiTokenFactory, ModelDeploymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role='admin').raw}")
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/prescale-rules/",
        "/api/v1/quotas/",
        "/api/v1/tokens/",
        "/api/v1/receivers/",
        "/api/v1/alerts/",
        "/api/v1/advice/",
        "/api/v1/traces/",
        "/api/v1/mig-plans/",
        "/api/v1/mig-applications/",
        "/api/v1/findings/",
        "/api/v1/costs/",
    ],
)
def test_a_list_without_that_filter_answers_400_naming_it(bot, path):
    # `team`: no list filters by it (the rules, tokens, receivers and alerts lists now take `namespace`
    # or `name` through their pages' FilterSets; tests/core/test_page_filters.py)
    response = bot.get(path, {"team": "team-a", "limit": 10})

    assert response.status_code == 400, (path, response.status_code)
    assert list(response.json()) == ["team"]


def test_details_and_the_timeline_refuse_them_too(bot):
    deployment = ModelDeploymentFactory()

    assert bot.get(f"/api/v1/deployments/{deployment.id}/timeline/", {"since": "1h"}).json() == {
        "since": ["Unknown parameter. Parameters here: end, start."]
    }
    assert bot.get(f"/api/v1/deployments/{deployment.id}/timeline/", {"limit": 5}).status_code == 200


def test_the_parameters_a_list_reads_itself_still_work_and_are_in_the_schema(bot):
    deployment = ModelDeploymentFactory()
    Alert.objects.create(
        cluster=deployment.cluster,
        rule="slo_burn_page",
        severity="page",
        deployment=deployment,
        fingerprint="f",
        summary="TTFT burning",
    )

    assert bot.get("/api/v1/alerts/", {"state": "firing", "severity": "page"}).json()["count"] == 1
    assert bot.get("/api/v1/findings/", {"dismissed": "true"}).status_code == 200
    document = Client().get("/api/schema/?format=json").json()
    assert {"state", "severity"} <= {p["name"] for p in document["paths"]["/api/v1/alerts/"]["get"]["parameters"]}
