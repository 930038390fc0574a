"""Number filters accept only what their column holds: 400 naming the parameter, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ApiTokenFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


def viewer() -> APIClient:
    token = ApiTokenFactory(role="viewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9223372036854775808", "Ensure this value is less than or equal to 9223372036854775807."),
        ("-9223372036854775809", "Ensure this value is greater than or equal to -9223372036854775808."),
        ("1.5", "Enter a whole number."),
        ("1e400", "Enter a whole number."),
    ],
)
def test_it_answers_400_naming_the_filter_for_an_integer_it_cannot_hold(value, message):
    response = viewer().get("/api/v1/actions/", {"deployment": value})

    assert response.status_code == 400
    assert response.json() == {"deployment": [message]}


def test_it_still_filters_by_an_integer_in_range():
    dep = ModelDeploymentFactory()

    response = viewer().get("/api/v1/actions/", {"deployment": str(dep.id)})

    assert response.status_code == 200 and response.json()["count"] == 0


def test_it_shows_an_out_of_range_filter_inline_on_the_audit_page():
    client = Client()
    client.force_login(UserFactory(role="viewer"))

    response = client.get("/scaling/actions/", {"deployment": "9223372036854775808"})

    assert response.status_code in (200, 400)
    assert b"9223372036854775807" in response.content


def test_it_refuses_an_offset_past_what_a_database_can_skip():
    ModelDeploymentFactory()  # with a row to count, the database is asked to skip that many

    response = viewer().get("/api/v1/deployments/", {"offset": "9223372036854775808"})

    assert response.status_code == 400
    assert "offset" in response.json()
