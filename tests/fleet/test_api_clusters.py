from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/clusters/"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_it_answers_401_with_a_bearer_challenge_without_credentials(db):
    response = APIClient().get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_answers_401_to_a_wrong_token(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sdk_not-a-real-token")

    assert client.get(URL).status_code == 401


def test_it_lists_clusters_with_their_sync_state(api):
    with time_machine.travel(NOW, tick=False):
        ClusterFactory(name="prod", namespaces=["llm", "search"], last_sync_at=NOW, last_sync_ok_at=NOW)
        ClusterFactory(
            name="edge",
            last_sync_at=NOW,
            last_sync_ok_at=NOW - timedelta(hours=1),
            last_sync_status="failed",
            last_sync_error="connection refused",
        )

        response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    edge, prod = body["results"]
    assert prod == {
        "id": prod["id"],
        "name": "prod",
        "backend": "kubernetes",
        "namespaces": ["llm", "search"],
        "last_sync_at": "2026-11-27T12:00:00Z",
        "last_sync_ok_at": "2026-11-27T12:00:00Z",
        "last_sync_status": "ok",
        "last_sync_error": "",
        "stale": False,
    }
    assert edge["stale"] is True and edge["last_sync_error"] == "connection refused"


def test_it_filters_clusters_by_name_and_backend(api):
    ClusterFactory(name="prod")
    ClusterFactory(name="demo", backend="simulated", kubeconfig_path="")

    assert [c["name"] for c in api.get(URL, {"name": "prod"}).json()["results"]] == ["prod"]
    assert [c["name"] for c in api.get(URL, {"backend": "simulated"}).json()["results"]] == ["demo"]
    assert api.get(URL, {"name": "nowhere"}).json()["count"] == 0
    bad = api.get(URL, {"backend": "openshift"})
    assert bad.status_code == 400 and "backend" in bad.json()


def test_it_pages_with_limit_and_offset(api):
    for i in range(3):
        ClusterFactory(name=f"c{i}")

    body = api.get(URL, {"limit": 2}).json()

    assert body["count"] == 3 and len(body["results"]) == 2
    assert body["next"].endswith("?limit=2&offset=2") and body["previous"] is None


@pytest.mark.parametrize(
    ("params", "name"),
    [({"limit": "abc"}, "limit"), ({"limit": "0"}, "limit"), ({"offset": "-1"}, "offset"), ({"offset": "x"}, "offset")],
)
def test_it_answers_400_naming_a_malformed_paging_parameter(api, params, name):
    response = api.get(URL, params)

    assert response.status_code == 400
    assert list(response.json()) == [name]
