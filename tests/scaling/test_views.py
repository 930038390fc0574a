"""The scaling pages: audit log, scale controls fragment, rules, quotas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from scaling.models import PrescaleRule, ScaleAction
from scaling.services import Actor, prescale_rule_create, scale_action_request

HTMX = {"HTTP_HX_REQUEST": "true"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def keda_deployment(world):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    return dep


def controls_url(dep):
    return reverse("scaling:deployment-controls", args=[dep.id])


def test_the_controls_fragment_shows_the_autoscaler_and_the_form(world, keda_deployment, operator):
    response = login(operator).get(controls_url(keda_deployment), **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "KEDA ScaledObject" in html and 'name="reason"' in html and 'hx-post="' in html
    for minutes in ("30", "60", "120", "240", "480"):
        assert f'value="{minutes}"' in html


def test_a_viewer_sees_the_state_but_no_form(world, keda_deployment, viewer):
    response = login(viewer).get(controls_url(keda_deployment), **HTMX)

    html = response.content.decode()
    assert "operator role needed" in html.lower()
    assert 'name="reason"' not in html


def test_a_viewer_cannot_post_a_scale(world, keda_deployment, viewer):
    response = login(viewer).post(
        controls_url(keda_deployment), {"replicas": 4, "mode": "floor", "reason": "r"}, **HTMX
    )

    assert response.status_code == 403
    assert ScaleAction.objects.count() == 0 and world.kube.requests == []


def test_posting_the_form_applies_it_and_shows_progress(world, keda_deployment, operator, run_on_commit):
    response = run_on_commit(
        login(operator).post,
        controls_url(keda_deployment),
        {"replicas": 4, "mode": "floor", "duration": "60", "reason": "incident 7"},
        **HTMX,
    )

    assert response.status_code == 200
    action = ScaleAction.objects.get()
    assert (action.actor_label, action.source, action.request["ttl_minutes"]) == ("alice", "ui", 60)
    html = response.content.decode()
    assert f"Action #{action.id}" in html
    assert world.so_spec()["spec"]["minReplicaCount"] == 4


def test_progress_is_polled_until_the_action_is_finished(world, keda_deployment, operator):
    action = scale_action_request(
        deployment=keda_deployment, replicas=4, reason="r", actor=Actor.of(operator), source="ui"
    )  # on_commit not run: still pending
    client = login(operator)
    url = reverse("scaling:action-progress", args=[action.id])

    pending = client.get(url, **HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in pending

    ScaleAction.objects.filter(id=action.id).update(
        status="succeeded", after={"min_replicas": 4}, before={"min_replicas": 2}
    )
    done = client.get(url, **HTMX).content.decode()
    assert "every 1s" not in done and "2 → <strong>4</strong>" in done


def test_scaling_to_zero_asks_for_confirmation_first(world, keda_deployment, operator, run_on_commit):
    client = login(operator)
    form = {"replicas": 0, "mode": "pin", "duration": "", "reason": "maintenance"}

    first = run_on_commit(client.post, controls_url(keda_deployment), form, **HTMX)
    assert first.status_code == 200
    assert "scales to zero" in first.content.decode()
    assert ScaleAction.objects.count() == 0 and world.kube.requests == []

    run_on_commit(client.post, controls_url(keda_deployment), {**form, "confirmed": "on"}, **HTMX)
    assert ScaleAction.objects.get().status == "succeeded"


def test_more_than_doubling_asks_for_confirmation(world, keda_deployment, operator):
    response = login(operator).post(
        controls_url(keda_deployment), {"replicas": 5, "mode": "floor", "duration": "", "reason": "r"}, **HTMX
    )
    assert "more than doubles" in response.content.decode()
    assert ScaleAction.objects.count() == 0


def test_the_confirmation_shows_the_previews_notes(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8, paused_replicas=2)

    response = login(operator).post(
        controls_url(dep), {"replicas": 5, "mode": "floor", "duration": "", "reason": "r"}, **HTMX
    )

    html = response.content.decode()
    assert "more than doubles" in html
    assert "no effect while pinned" in html and "autoscaling.keda.sh/paused-replicas" in html
    assert ScaleAction.objects.count() == 0


def test_the_confirmation_escapes_the_notes(world, keda_deployment, operator, monkeypatch):
    from scaling import decisions

    monkeypatch.setattr(decisions, "pin_notes", lambda **kwargs: ["<script>alert(1)</script>"])
    response = login(operator).post(
        controls_url(keda_deployment), {"replicas": 0, "mode": "pin", "duration": "", "reason": "r"}, **HTMX
    )

    html = response.content.decode()
    assert "scales to zero" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_the_result_shows_the_actions_notes(world, operator, run_on_commit):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8, paused_replicas=2)

    response = run_on_commit(
        login(operator).post, controls_url(dep), {"replicas": 3, "mode": "floor", "duration": "", "reason": "r"}, **HTMX
    )

    assert "no effect while pinned" in response.content.decode()


def test_refusals_show_inline(world, keda_deployment, operator):
    client = login(operator)

    # HTMX swaps only 2xx answers: the fragment comes back 200 with the errors inline.
    above = client.post(controls_url(keda_deployment), {"replicas": 3, "mode": "floor", "reason": ""}, **HTMX)
    assert above.status_code == 200 and "This field is required" in above.content.decode()

    too_many = client.post(
        controls_url(keda_deployment), {"replicas": 9, "mode": "floor", "reason": "r", "confirmed": "on"}, **HTMX
    )
    assert too_many.status_code == 200
    assert "max (8)" in too_many.content.decode()
    assert world.patches() == []
    assert ScaleAction.objects.get().status == "rejected"

    plain = client.post(controls_url(keda_deployment), {"replicas": 9, "mode": "floor", "reason": "r"})
    assert plain.status_code == 409 and "<html" in plain.content.decode()
    assert ScaleAction.objects.filter(status="rejected").count() == 2  # refused before any confirmation too


def test_the_audit_page_lists_and_filters_actions(world, keda_deployment, operator, run_on_commit):
    run_on_commit(
        scale_action_request,
        deployment=keda_deployment,
        replicas=3,
        reason="<b>launch</b>",
        actor=Actor.of(operator),
        source="ui",
    )
    client = login(operator)

    page = client.get(reverse("scaling:audit"))
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "&lt;b&gt;launch&lt;/b&gt;" in html and "<b>launch</b>" not in html

    fragment = client.get(reverse("scaling:audit"), {"status": "failed"}, **HTMX).content.decode()
    assert "<html" not in fragment and "No actions match" in fragment
    bad = client.get(reverse("scaling:audit"), {"status": "nope"}).content.decode()
    assert "Filter not applied" in bad
    assert client.get(reverse("scaling:action", args=[ScaleAction.objects.get().id])).status_code == 200


def test_the_rules_page_previews_firings_in_local_time_and_utc(world, keda_deployment, operator):
    prescale_rule_create(
        deployment=keda_deployment,
        cron="0 9 * * 1-5",
        timezone_name="America/New_York",
        min_replicas=4,
        duration_minutes=60,
    )
    with time_machine.travel(datetime(2025, 6, 2, 12, 0, tzinfo=UTC), tick=False):
        html = login(operator).get(reverse("scaling:rules")).content.decode()

    assert "Mon 2025-06-02 09:00 EDT" in html and "(13:00 UTC)" in html
    assert html.count("<li>") >= 5


def test_the_rule_form_shows_a_bad_cron_or_timezone_inline(world, keda_deployment, operator):
    client = login(operator)
    response = client.post(
        reverse("scaling:rule-create"),
        {
            "deployment": keda_deployment.id,
            "cron": "0 9 * *",
            "timezone": "UTC",
            "min_replicas": 2,
            "duration_minutes": 60,
            "enabled": "on",
        },
    )
    assert response.status_code == 400 and "five fields" in response.content.decode()

    response = client.post(
        reverse("scaling:rule-create"),
        {
            "deployment": keda_deployment.id,
            "cron": "0 9 * * *",
            "timezone": "Europe/Paris-ish",
            "min_replicas": 2,
            "duration_minutes": 60,
            "enabled": "on",
        },
    )
    assert response.status_code == 400 and "IANA" in response.content.decode()
    assert PrescaleRule.objects.count() == 0

    ok = client.post(
        reverse("scaling:rule-create"),
        {
            "deployment": keda_deployment.id,
            "cron": "0 9 * * *",
            "timezone": "Europe/Paris",
            "min_replicas": 2,
            "duration_minutes": 60,
            "enabled": "on",
        },
    )
    assert ok.status_code == 302 and PrescaleRule.objects.get().created_by == operator


def test_a_viewer_cannot_create_rules(world, keda_deployment, viewer):
    assert login(viewer).get(reverse("scaling:rule-create")).status_code == 403


def test_the_quota_pages_show_hard_and_used_and_only_admins_edit(world, admin, operator, run_on_commit):
    quota = world.quota(hard=16, used=12)

    html = login(operator).get(reverse("scaling:quotas")).content.decode()
    assert "75%" in html and reverse("scaling:quota-edit", args=[quota.id]) not in html
    assert login(operator).get(reverse("scaling:quota-edit", args=[quota.id])).status_code == 403

    client = login(admin)
    refused = client.post(reverse("scaling:quota-edit", args=[quota.id]), {"hard_0": 8, "reason": "shrink"})
    assert refused.status_code == 400 and "below what the namespace uses now (12)" in refused.content.decode()
    assert world.patches() == []

    done = run_on_commit(client.post, reverse("scaling:quota-edit", args=[quota.id]), {"hard_0": 20, "reason": "grow"})
    assert done.status_code == 302
    assert world.kube.get("ResourceQuota", "llm", "gpu-quota")["spec"]["hard"]["requests.nvidia.com/gpu"] == "20"


def test_the_audit_page_and_api_use_a_fixed_number_of_queries(
    world, keda_deployment, operator, django_assert_max_num_queries
):
    from rest_framework.test import APIClient

    for i in range(30):
        ScaleAction.objects.create(
            actor_label=f"user{i}",
            actor_key=f"user:{i}",
            source="api",
            cluster=world.cluster,
            namespace="llm",
            deployment=keda_deployment,
            target_kind="scaledobject",
            target_name="llama",
            reason="r",
            status="succeeded",
            before={"min_replicas": 1},
            after={"min_replicas": 2},
        )
    client = login(operator)
    api = APIClient()
    api.force_authenticate(operator)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("scaling:audit")).status_code == 200
    with django_assert_max_num_queries(6):
        assert api.get("/api/v1/actions/").json()["count"] == 30
