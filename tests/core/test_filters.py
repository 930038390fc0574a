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


# ------------------------------------------------------------ NetBox-style filters, API and pages alike


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_it_matches_any_of_several_values_for_one_field():
    ModelDeploymentFactory(namespace="search", name="a")
    ModelDeploymentFactory(namespace="chat", name="b")
    ModelDeploymentFactory(namespace="batch", name="c")

    response = viewer().get("/api/v1/deployments/?namespace=search&namespace=chat&ordering=name")

    assert _names(response) == ["a", "b"]


def test_it_finds_a_part_of_a_name_in_any_case_with_ic():
    ModelDeploymentFactory(name="Llama-3-70B")
    ModelDeploymentFactory(name="mistral-7b")

    assert _names(viewer().get("/api/v1/deployments/", {"name__ic": "LLAMA"})) == ["Llama-3-70B"]
    assert _names(viewer().get("/api/v1/deployments/", {"name": "llama"})) == []  # `name` stays exact


def test_it_searches_free_text_with_q_across_fields():
    ModelDeploymentFactory(name="chat", namespace="team-search", model="meta/llama")
    ModelDeploymentFactory(name="search-ranker", namespace="ml", model="bge")
    ModelDeploymentFactory(name="other", namespace="ml", model="qwen")

    assert sorted(_names(viewer().get("/api/v1/deployments/", {"q": "SEARCH"}))) == ["chat", "search-ranker"]
    assert _names(viewer().get("/api/v1/deployments/", {"q": "team llama"})) == ["chat"]  # every word


def test_it_orders_by_an_offered_field_either_way_and_refuses_others():
    for name, replicas in (("b", 3), ("a", 1), ("c", 2)):
        ModelDeploymentFactory(name=name, replicas_desired=replicas)

    assert _names(viewer().get("/api/v1/deployments/", {"ordering": "-replicas"})) == ["b", "c", "a"]
    assert _names(viewer().get("/api/v1/deployments/", {"ordering": "name"})) == ["a", "b", "c"]
    refused = viewer().get("/api/v1/deployments/", {"ordering": "image"})
    assert refused.status_code == 400 and "ordering" in refused.json()


def test_it_answers_400_naming_an_unknown_filter_parameter():
    ModelDeploymentFactory(namespace="search")

    response = viewer().get("/api/v1/deployments/", {"namspace": "search"})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["namspace"]
    assert "Unknown filter" in body["namspace"][0] and "namespace" in body["namspace"][0]


def test_it_allows_paging_and_format_parameters_beside_filters():
    ModelDeploymentFactory(namespace="search")

    response = viewer().get("/api/v1/deployments/", {"namespace": "search", "limit": 5, "offset": 0, "format": "json"})

    assert response.status_code == 200 and response.json()["count"] == 1


def test_it_validates_each_of_several_values():
    refused = viewer().get("/api/v1/actions/?status=succeeded&status=sideways")

    assert refused.status_code == 400 and "sideways" in refused.json()["status"][0]
    both = viewer().get("/api/v1/actions/?deployment=1&deployment=99999999999999999999")
    assert both.status_code == 400 and "deployment" in both.json()


def test_it_refuses_too_many_values_for_one_parameter():
    query = "&".join(f"namespace=ns{i}" for i in range(51))

    response = viewer().get(f"/api/v1/deployments/?{query}")

    assert response.status_code == 400 and "At most 50 values" in response.json()["namespace"][0]


def test_the_pages_use_the_same_filters_and_name_an_unknown_one_inline():
    ModelDeploymentFactory(namespace="search", name="ranker")
    ModelDeploymentFactory(namespace="chat", name="talker")
    ModelDeploymentFactory(namespace="batch", name="cruncher")
    client = Client()
    client.force_login(UserFactory(role="viewer"))

    page = client.get("/?namespace=search&namespace=chat").content.decode()
    assert "ranker" in page and "talker" in page and "cruncher" not in page

    typo = client.get("/", {"namspace": "search"}).content.decode()
    assert "namspace: Unknown filter" in typo and "ranker" not in typo
