"""Applying an advisor result: the dry run's diff is exactly what reaches the fake Kubernetes API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from advice.apply import prescale_rules_for
from advice.models import AdviceRun
from scaling.models import PrescaleRule, ScaleAction
from tests.factories import ApiTokenFactory, UserFactory
from tests.scaling.conftest import _eager_tasks, _no_conflict_pauses, run_on_commit, world  # noqa: F401

POLICY = {
    "kind": "keda",
    "metric": "queue",
    "target": 4.0,
    "min_replicas": 2,
    "max_replicas": 10,
    "polling_interval_seconds": 10,
    "cooldown_seconds": 120,
    "scale_down_stabilization_seconds": 300,
    "scale_down_max_pods_per_period": 1,
    "scale_down_period_seconds": 60,
    "prescale": [{"from_utc": "08:30", "to_utc": "11:00", "replicas": 4}],
    "warm_pool_nodes": 1,
}


def candidate(label, policy):
    return {
        "label": label,
        "policy": policy,
        "slo_violation_minutes": 0,
        "attainment": 1.0,
        "gpu_hours": 10.0,
        "cost_usd": 20.0,
    }


@pytest.fixture
def advised(world):  # noqa: F811
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    best = candidate("queue 4 (2-10)", POLICY)
    static = candidate("static 3", {"kind": "static", "replicas": 3, "prescale": [], "warm_pool_nodes": 0})
    return AdviceRun.objects.create(
        user=UserFactory(),
        deployment=dep,
        slo_seconds=2.0,
        status=AdviceRun.Status.DONE,
        result={
            "recommended": best,
            "candidates": [best, static],
            "hours": 1,
            "baselines": {"keda_seed": best, "static_peak": static},
        },
    )


def bot(role="operator") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role=role, name='advice-bot').raw}")
    return client


def writes(world):  # noqa: F811
    return [r for r in world.kube.requests if r.method != "GET"]


def test_it_turns_advised_windows_into_daily_utc_rules():
    assert prescale_rules_for({"prescale": [{"from_utc": "22:00", "to_utc": "01:30", "replicas": 3}]}) == [
        {"cron": "0 22 * * *", "timezone": "UTC", "min_replicas": 3, "duration_minutes": 210}
    ]


def test_it_shows_the_exact_changes_and_writes_nothing_on_a_dry_run(world, advised):  # noqa: F811
    response = bot().post(f"/api/v1/advice/{advised.id}/apply/", {"dry_run": True}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    changed = {d["path"]: (d["before"], d["after"]) for d in body["diff"]}
    assert changed["spec.minReplicaCount"] == (1, 2) and changed["spec.maxReplicaCount"] == (8, 10)
    assert changed["spec.triggers[0].metadata.threshold"] == ("5", "4")
    assert body["prescale_rules"] == [
        {"cron": "30 8 * * *", "timezone": "UTC", "min_replicas": 4, "duration_minutes": 150}
    ]
    assert "warm pool" in body["notes"][0]
    assert writes(world) == [] and not ScaleAction.objects.exists() and not PrescaleRule.objects.exists()


def test_it_applies_the_advice_as_the_merge_patch_the_dry_run_showed(world, advised, run_on_commit):  # noqa: F811
    client = bot()
    shown = client.post(f"/api/v1/advice/{advised.id}/apply/", {"dry_run": True}, format="json").json()

    response = run_on_commit(client.post, f"/api/v1/advice/{advised.id}/apply/", {"reason": "advisor"}, format="json")

    assert response.status_code == 202, response.json()
    sent = writes(world)
    assert [r.body for r in sent] == [shown["patch"]]
    action = ScaleAction.objects.get(id=response.json()["action"]["id"])
    assert action.status == ScaleAction.Status.SUCCEEDED and action.operation == "policy"
    rule = PrescaleRule.objects.get(id__in=response.json()["prescale_rule_ids"])
    assert (rule.cron, rule.min_replicas, rule.duration_minutes) == ("30 8 * * *", 4, 150)
    assert AuditEntry.objects.filter(kind="prescale_rule").count() == 1


def test_it_applies_a_chosen_static_candidate(world, advised, run_on_commit):  # noqa: F811
    response = run_on_commit(
        bot().post, f"/api/v1/advice/{advised.id}/apply/", {"candidate": "static 3", "reason": "flat"}, format="json"
    )

    assert response.status_code == 202, response.json()
    spec = world.so_spec()["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 3)


def test_it_is_for_operators_and_finished_advice_only(world, advised):  # noqa: F811
    assert bot("viewer").post(f"/api/v1/advice/{advised.id}/apply/", {}, format="json").status_code == 403
    advised.status = AdviceRun.Status.RUNNING
    advised.save()
    assert bot().post(f"/api/v1/advice/{advised.id}/apply/", {}, format="json").status_code == 409
    assert bot().post(f"/api/v1/advice/{advised.id}/apply/", {"candidate": "nope"}, format="json").status_code == 409
    assert writes(world) == [] and not ScaleAction.objects.exists()


def page_client(role):
    from django.test import Client

    client = Client()
    client.force_login(UserFactory(username=f"page-{role}", role=role))
    return client


def test_it_shows_the_changes_on_the_page_before_applying_them(world, advised, run_on_commit):  # noqa: F811
    client = page_client("operator")

    page = client.get(f"/advice/{advised.id}/apply/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "spec.minReplicaCount" in html and "30 8 * * *" in html and "Apply these changes" in html
    assert writes(world) == []

    response = run_on_commit(
        client.post, f"/advice/{advised.id}/apply/", {"candidate": "queue 4 (2-10)", "reason": "from the page"}
    )

    action = ScaleAction.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{action.pk}/")
    assert action.source == "ui" and action.status == ScaleAction.Status.SUCCEEDED
    assert world.so_spec()["spec"]["maxReplicaCount"] == 10


def test_it_keeps_viewers_off_the_apply_page(world, advised):  # noqa: F811
    assert page_client("viewer").get(f"/advice/{advised.id}/apply/").status_code == 403
    assert "Apply this policy" not in page_client("viewer").get(f"/advice/{advised.id}/").content.decode()
    assert "Apply this policy" in page_client("operator").get(f"/advice/{advised.id}/").content.decode()
