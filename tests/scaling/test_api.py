"""The bots' REST API: shapes, status codes, roles, unknown fields, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from scaling.models import PrescaleRule, ScaleAction
from tests.factories import ApiTokenFactory


def bot(role="operator", name="slack-bot") -> APIClient:
    token = ApiTokenFactory(role=role, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.fixture
def keda_deployment(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    return dep


def scale(client, dep, body, run_on_commit=None, **headers):
    url = f"/api/v1/deployments/{dep.id}/scale/"
    if run_on_commit is None:
        return client.post(url, body, format="json", **headers)
    return run_on_commit(client.post, url, body, format="json", **headers)


def test_a_scale_request_answers_202_with_the_action(world, keda_deployment, run_on_commit):
    response = scale(bot(), keda_deployment, {"replicas": 4, "reason": "launch", "ttl_minutes": 120}, run_on_commit)

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["target"] == {"kind": "scaledobject", "name": "llama"}
    assert body["before"] == {"min_replicas": 1} and body["after"] == {"min_replicas": 4}
    assert body["status"] in ("pending", "succeeded")
    action = ScaleAction.objects.get(id=body["id"])
    assert action.actor_label == "bot:slack-bot" and action.source == "api" and action.actor_token_id
    assert action.status == ScaleAction.Status.SUCCEEDED
    assert world.so_spec()["spec"]["minReplicaCount"] == 4


def test_a_dry_run_answers_200_with_what_would_be_written_and_writes_nothing(world, keda_deployment):
    response = scale(bot(), keda_deployment, {"replicas": 4, "reason": "what if", "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True
    assert body["target"] == {"kind": "scaledobject", "name": "llama"}
    assert body["after"] == {"min_replicas": 4} and body["fields"] == ["spec.minReplicaCount"]
    assert set(body["cost_per_hour_usd"]) == {"before", "after"}
    assert ScaleAction.objects.count() == 0
    assert world.kube.requests == []


def test_a_dry_run_on_a_paused_scaledobject_says_what_runs_now_and_once_unpinned(world):
    dep = world.deployment(replicas=3)
    world.keda(dep, min_replicas=1, max_replicas=8, paused_replicas=3)

    response = scale(bot(), dep, {"replicas": 6, "reason": "what if", "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["replicas"] == {"before": 3, "after": 3}
    assert body["pinned"] | {"cost_per_hour_usd_when_unpinned": "?"} == {
        "replicas": 3,
        "replicas_when_unpinned": 6,
        "cost_per_hour_usd_when_unpinned": "?",
    }
    assert any(n.startswith("no effect while pinned") for n in body["notes"])


def test_a_dry_run_says_pinned_none_when_nothing_is_paused(world, keda_deployment):
    body = scale(bot(), keda_deployment, {"replicas": 4, "reason": "what if", "dry_run": True}).json()

    assert body["pinned"] is None and body["replicas"]["after"] == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"replica": 4, "reason": "typo"}, "replica"),
        ({"replicas": -1, "reason": "r"}, "replicas"),
        ({"replicas": "four", "reason": "r"}, "replicas"),
        ({"replicas": 2.5, "reason": "r"}, "replicas"),
        ({"replicas": 2}, "reason"),
        ({"replicas": 2, "reason": "  "}, "reason"),
        ({"replicas": 2, "reason": "r", "mode": "exact"}, "mode"),
        ({"replicas": 2, "reason": "r", "ttl_minutes": 0}, "ttl_minutes"),
    ],
)
def test_bad_input_answers_400_with_field_errors_and_writes_nothing(world, keda_deployment, body, field):
    response = scale(bot(), keda_deployment, body)

    assert response.status_code == 400
    assert field in response.json()
    assert world.kube.requests == []


def test_a_viewer_gets_403_on_every_write(world, keda_deployment):
    client = bot(role="viewer")
    quota = world.quota()

    assert scale(client, keda_deployment, {"replicas": 2, "reason": "r"}).status_code == 403
    assert client.post("/api/v1/prescale-rules/", {}, format="json").status_code == 403
    assert client.patch(f"/api/v1/quotas/{quota.id}/", {}, format="json").status_code == 403
    assert client.get("/api/v1/actions/").status_code == 200
    assert world.kube.requests == []


def test_an_anonymous_request_gets_401(world, keda_deployment):
    assert scale(APIClient(), keda_deployment, {"replicas": 2, "reason": "r"}).status_code == 401


def test_a_refusal_answers_409_with_the_numbers(world, keda_deployment):
    response = scale(bot(), keda_deployment, {"replicas": 9, "reason": "r"})

    assert response.status_code == 409
    body = response.json()
    assert "max (8)" in body["detail"] and body["max_replicas"] == 8 and body["replicas"]
    assert ScaleAction.objects.get(id=body["action_id"]).status == "rejected"


def test_an_idempotency_key_replays_the_first_action(world, keda_deployment, run_on_commit):
    client = bot()
    first = scale(client, keda_deployment, {"replicas": 4, "reason": "r"}, run_on_commit, HTTP_IDEMPOTENCY_KEY="k1")
    again = scale(client, keda_deployment, {"replicas": 4, "reason": "r"}, run_on_commit, HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(world.patches()) == 1


def test_an_unknown_deployment_is_404(world):
    assert scale(bot(), type("D", (), {"id": 999999})(), {"replicas": 1, "reason": "r"}).status_code == 404


def test_actions_are_listed_paginated_and_filtered(world, keda_deployment, run_on_commit):
    client = bot()
    scale(client, keda_deployment, {"replicas": 4, "reason": "r"}, run_on_commit)
    scale(client, keda_deployment, {"replicas": 99, "reason": "r"})

    page = client.get("/api/v1/actions/").json()
    assert set(page) == {"count", "next", "previous", "results"} and page["count"] == 2
    rejected = client.get("/api/v1/actions/", {"status": "rejected"}).json()
    assert rejected["count"] == 1 and rejected["results"][0]["status"] == "rejected"
    assert (
        client.get(
            "/api/v1/actions/",
            {"cluster": "prod", "namespace": "llm", "actor": "bot:slack-bot", "deployment": keda_deployment.id},
        ).json()["count"]
        == 2
    )
    assert client.get("/api/v1/actions/", {"cluster": "other"}).json()["count"] == 0
    assert client.get("/api/v1/actions/", {"status": "bogus"}).status_code == 400
    one = client.get(f"/api/v1/actions/{page['results'][0]['id']}/").json()
    assert one["target"] == {"kind": "scaledobject", "name": "llama"} and one["cluster"] == "prod"


def test_prescale_rules_are_created_listed_patched_and_deleted(world, keda_deployment):
    client = bot()
    with time_machine.travel(datetime(2025, 6, 2, 12, 0, tzinfo=UTC), tick=False):
        created = client.post(
            "/api/v1/prescale-rules/",
            {
                "deployment": keda_deployment.id,
                "cron": "0 9 * * 1-5",
                "timezone": "Europe/Berlin",
                "min_replicas": 4,
                "duration_minutes": 120,
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        rule = created.json()
        assert set(rule) >= {
            "id",
            "deployment",
            "cron",
            "timezone",
            "min_replicas",
            "duration_minutes",
            "enabled",
            "next_firings",
        }
        assert rule["next_firings"][0] == {"utc": "2025-06-03T07:00:00+00:00", "local": "2025-06-03T09:00:00+02:00"}
        assert len(rule["next_firings"]) == 5
        assert PrescaleRule.objects.get().created_by is not None

        listed = client.get("/api/v1/prescale-rules/").json()
        assert listed["count"] == 1

        patched = client.patch(f"/api/v1/prescale-rules/{rule['id']}/", {"enabled": False}, format="json")
        assert patched.status_code == 200 and patched.json()["enabled"] is False
        bad = client.patch(f"/api/v1/prescale-rules/{rule['id']}/", {"cron": "0 25 * * *"}, format="json")
        assert bad.status_code == 400 and "cron" in bad.json()
        typo = client.patch(f"/api/v1/prescale-rules/{rule['id']}/", {"minreplicas": 3}, format="json")
        assert typo.status_code == 400 and "minreplicas" in typo.json()
        assert client.put(f"/api/v1/prescale-rules/{rule['id']}/", {}, format="json").status_code == 405

        assert client.delete(f"/api/v1/prescale-rules/{rule['id']}/").status_code == 204
        assert PrescaleRule.objects.count() == 0


def test_a_rule_with_a_bad_timezone_is_400(world, keda_deployment):
    response = bot().post(
        "/api/v1/prescale-rules/",
        {
            "deployment": keda_deployment.id,
            "cron": "0 9 * * *",
            "timezone": "Berlin",
            "min_replicas": 2,
            "duration_minutes": 60,
        },
        format="json",
    )
    assert response.status_code == 400 and "timezone" in response.json()


def test_quotas_are_listed_and_an_admin_patch_answers_202(world, run_on_commit):
    quota = world.quota(hard=16, used=4)
    client = bot(role="admin", name="ops")

    listed = client.get("/api/v1/quotas/").json()
    assert listed["results"] == [
        {
            "id": quota.id,
            "cluster": "prod",
            "namespace": "llm",
            "name": "gpu-quota",
            "hard": {"requests.nvidia.com/gpu": 16},
            "used": {"requests.nvidia.com/gpu": 4},
        }
    ]

    response = run_on_commit(
        client.patch,
        f"/api/v1/quotas/{quota.id}/",
        {"hard": {"requests.nvidia.com/gpu": 24}, "reason": "team grew"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["target"] == {"kind": "quota", "name": "gpu-quota"}
    [patch] = world.patches()
    assert patch.path == "/api/v1/namespaces/llm/resourcequotas/gpu-quota"
    assert patch.body["spec"] == {"hard": {"requests.nvidia.com/gpu": "24"}}
    assert ScaleAction.objects.get(id=response.json()["id"]).status == "succeeded"


def test_an_operator_may_not_change_a_quota(world):
    quota = world.quota()
    response = bot(role="operator").patch(
        f"/api/v1/quotas/{quota.id}/", {"hard": {"requests.nvidia.com/gpu": 24}, "reason": "r"}, format="json"
    )
    assert response.status_code == 403


def test_lowering_a_quota_below_usage_is_409_unless_forced(world, run_on_commit):
    quota = world.quota(hard=16, used=12)
    client = bot(role="admin", name="ops")
    url = f"/api/v1/quotas/{quota.id}/"

    refused = client.patch(url, {"hard": {"requests.nvidia.com/gpu": 8}, "reason": "shrink"}, format="json")
    assert refused.status_code == 409 and refused.json()["used"] == 12
    assert world.patches() == []

    forced = run_on_commit(
        client.patch, url, {"hard": {"requests.nvidia.com/gpu": 8}, "reason": "shrink", "force": True}, format="json"
    )
    assert forced.status_code == 202
    assert len(world.patches()) == 1


def test_a_quota_patch_with_a_non_gpu_key_or_unknown_field_is_400(world):
    quota = world.quota()
    client = bot(role="admin", name="ops")
    url = f"/api/v1/quotas/{quota.id}/"

    assert client.patch(url, {"hard": {"cpu": 8}, "reason": "r"}, format="json").status_code == 400
    assert (
        client.patch(
            url, {"hard": {"requests.nvidia.com/gpu": 8}, "reason": "r", "forced": True}, format="json"
        ).status_code
        == 400
    )
