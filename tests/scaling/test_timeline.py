"""The timeline of a deployment, from a 14-minute scale-up served by the fake Kubernetes API."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Role
from fleet.models import ModelDeployment, ScalingEvent
from scaling.models import ScaleAction
from tests.factories import ApiTokenFactory, UserFactory
from tests.fakekube import story

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployments/{}/timeline/"
RANGE = {"start": "2025-03-01T03:00:00Z", "end": "2025-03-01T03:20:00Z"}


@pytest.fixture
def api(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role=Role.VIEWER).raw}")
    return client


@pytest.fixture
def llama(fake_kube, fake_kubeconfig):
    story.sync_story(fake_kube, fake_kubeconfig)
    return ModelDeployment.objects.get(name=story.NAME)


def first_of(rows: list[dict], kind: str) -> int:
    return next(i for i, row in enumerate(rows) if row["kind"] == kind)


def test_it_tells_the_scale_up_as_a_story_in_time_order(api, llama):
    answer = api.get(URL.format(llama.id), {**RANGE, "limit": 1000})

    assert answer.status_code == 200, answer.content
    body = answer.json()
    rows = body["results"]
    assert body["count"] == len(rows) and body["next"] is None
    assert set(rows[0]) == {"at", "kind", "object", "message", "source"}
    times = [row["at"] for row in rows]
    assert times == sorted(times)
    story_order = [
        "metric_above_target",
        "desired_changed",
        "pod_created",
        "scheduling_failed",
        "nodeclaim_launched",
        "node_registered",
        "node_ready",
        "pod_scheduled",
        "image_pulling",
        "image_pulled",
        "container_started",
        "pod_ready",
    ]
    firsts = [first_of(rows, kind) for kind in story_order]
    assert firsts == sorted(firsts)
    assert rows[first_of(rows, "metric_above_target")]["at"] == "2025-03-01T03:02:30Z"
    failed = rows[first_of(rows, "scheduling_failed")]
    assert "Insufficient nvidia.com/gpu" in failed["message"] and failed["at"] == "2025-03-01T03:02:31Z"
    assert rows[first_of(rows, "nodeclaim_launched")]["object"] == f"NodeClaim/{story.CLAIM}"
    assert rows[first_of(rows, "node_ready")]["at"] == "2025-03-01T03:09:00Z"
    assert rows[-1]["kind"] == "pod_ready" and rows[-1]["at"] == "2025-03-01T03:15:03Z"
    assert sum(row["kind"] == "pod_ready" for row in rows) == 4  # the 2 older pods are outside the range


def test_it_shows_scaledeck_actions_among_the_events(api, llama):
    ScaleAction.objects.create(
        actor_label="alice",
        actor_key="user:1",
        source=ScaleAction.Source.API,
        cluster=llama.cluster,
        namespace="llm",
        deployment=llama,
        reason="launch day",
        status=ScaleAction.Status.SUCCEEDED,
        created_at=story.at(2, 35),
    )

    rows = api.get(URL.format(llama.id), {**RANGE, "limit": 1000}).json()["results"]

    action = rows[first_of(rows, "scale_action")]
    assert action["at"] == "2025-03-01T03:02:35Z" and "alice" in action["message"] and "launch day" in action["message"]
    assert first_of(rows, "scheduling_failed") < first_of(rows, "scale_action") < first_of(rows, "nodeclaim_launched")


def test_it_pages_with_a_constant_number_of_queries(api, llama):
    api.get(URL.format(llama.id))  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as first_page:
        page = api.get(URL.format(llama.id), {**RANGE, "limit": 5}).json()
    with CaptureQueriesContext(connection) as later_page:
        later = api.get(URL.format(llama.id), {**RANGE, "limit": 5, "offset": 20}).json()

    assert len(page["results"]) == 5 and page["next"] and later["previous"]
    assert len(first_page.captured_queries) == len(later_page.captured_queries)
    assert page["results"][-1]["at"] <= later["results"][0]["at"]


def test_it_keeps_to_the_range_asked_for(api, llama):
    rows = api.get(
        URL.format(llama.id), {"start": "2025-03-01T03:09:00Z", "end": "2025-03-01T03:11:00Z", "limit": 1000}
    ).json()["results"]

    assert rows and all("03:09:00" <= row["at"][11:19] <= "03:11:00" for row in rows)
    assert {row["kind"] for row in rows} >= {"node_ready", "pod_scheduled", "image_pulled"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-13-01T00:00:00Z"}, "end"),
        ({"start": "2025-03-02T00:00:00Z", "end": "2025-03-01T00:00:00Z"}, "start"),
    ],
)
def test_it_refuses_a_bad_range_with_a_clear_error(api, llama, query, field):
    answer = api.get(URL.format(llama.id), query)

    assert answer.status_code == 400
    assert field in answer.json().get("field", []) or field in answer.json()


def test_it_answers_404_for_an_unknown_deployment_and_401_without_credentials(api, llama):
    assert api.get(URL.format(llama.id + 999)).status_code == 404
    assert APIClient().get(URL.format(llama.id)).status_code == 401


def test_it_does_not_mix_in_node_events_of_unrelated_nodes(api, llama):
    ScalingEvent.objects.create(
        cluster=llama.cluster,
        uid="other-claim",
        at=story.at(5),
        kind="nodeclaim_launched",
        object_kind="NodeClaim",
        object_name="elsewhere",
        source="nodeclaim",
        node_name="gpu-other",
    )

    rows = api.get(URL.format(llama.id), {**RANGE, "limit": 1000}).json()["results"]

    assert "NodeClaim/elsewhere" not in {row["object"] for row in rows}


def test_the_page_fragment_shows_the_story_and_escapes_cluster_text(client, llama):
    ScalingEvent.objects.filter(kind="scheduling_failed").update(message="<script>alert(1)</script> no GPU")
    client.force_login(UserFactory(role=Role.VIEWER))

    html = client.get(
        f"/scaling/deployments/{llama.id}/timeline/", {"start": RANGE["start"], "end": RANGE["end"]}
    ).content.decode()

    assert "Scaling timeline" in html and "node launched" in html and "pod ready" in html
    assert "2025-03-01 03:09:00" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.index('data-kind="nodeclaim_launched"') < html.index('data-kind="pod_ready"')


def test_the_page_fragment_says_plainly_when_the_range_is_bad(client, llama):
    client.force_login(UserFactory(role=Role.VIEWER))

    html = client.get(f"/scaling/deployments/{llama.id}/timeline/", {"start": "soon"}).content.decode()

    assert "is not a date and time" in html and "showing the last 24 hours" in html


def test_the_deployment_page_shows_the_measured_cold_start_and_loads_the_timeline(client, llama):
    client.force_login(UserFactory(role=Role.VIEWER))

    with time_machine.travel(story.SYNCED_AT, tick=False):
        html = client.get(f"/deployments/{llama.id}/").content.decode()

    assert "Cold start" in html and "p95 12 min 33 s" in html  # 752.85 s
    assert "Container start to Ready: loading weights (p95)" in html and "3 min 55 s" in html
    assert f'hx-get="/scaling/deployments/{llama.id}/timeline/"' in html


def test_the_deployment_api_answers_the_measured_cold_start(api, llama):
    with time_machine.travel(story.SYNCED_AT, tick=False):
        body = api.get(f"/api/v1/deployments/{llama.id}/").json()

    assert body["cold_start"] == {
        "samples": 4,
        "p50_seconds": 751.5,
        "p95_seconds": 752.85,
        "max_seconds": 753.0,
        "scheduling_p95_seconds": 397.85,
        "pull_p95_seconds": 115.0,
        "load_p95_seconds": 235.0,
    }


def test_the_page_fragment_shows_the_latest_moments_in_time_order(client, llama, monkeypatch):
    monkeypatch.setattr("scaling.timeline_views.SHOWN", 3)
    client.force_login(UserFactory(role=Role.VIEWER))

    html = client.get(f"/scaling/deployments/{llama.id}/timeline/", RANGE).content.decode()

    assert html.count("<tr data-kind=") == 3 and "The latest 3 moments of this range" in html
    assert html.count('data-kind="pod_ready"') == 3  # the last three pods ready, 03:15:01-03:15:03
    assert html.index("03:15:01") < html.index("03:15:03")
