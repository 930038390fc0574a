"""The scale controls and the action page: one read, refreshed together; end now; what a floor at max is."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from scaling.models import ScaleAction
from scaling.services import Actor, scale_action_execute, scale_action_request

HTMX = {"HTTP_HX_REQUEST": "true"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def controls_url(dep) -> str:
    return reverse("scaling:deployment-controls", args=[dep.id])


def test_the_action_page_polls_its_whole_record_as_one_fragment(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    action = scale_action_request(deployment=dep, replicas=4, reason="r", actor=Actor.of(operator), source="ui")
    client = login(operator)
    url = reverse("scaling:action", args=[action.id])

    page = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in page

    scale_action_execute(action_id=action.id)
    fragment = client.get(url, **HTMX).content.decode()

    assert "<html" not in fragment and "every 1s" not in fragment
    assert 'badge ok">succeeded' in fragment and ">pending<" not in fragment
    assert "(1 attempt)" in fragment and "Floor (min replicas): 2 → <strong>4</strong>" in fragment


def test_after_apply_the_controls_refresh_box_recent_and_floor_together(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    client = login(operator)

    applied = client.post(controls_url(dep), {"replicas": 4, "mode": "floor", "reason": "launch"}, **HTMX)
    action = ScaleAction.objects.get()  # on_commit not run: still pending
    html = applied.content.decode()
    poll = f'hx-get="{controls_url(dep)}?action={action.id}" hx-target="#scale-controls-{dep.id}"'
    assert poll in html

    scale_action_execute(action_id=action.id)
    after = client.get(f"{controls_url(dep)}?action={action.id}", **HTMX).content.decode()

    assert f'Action #{action.id}</a></strong>\n  <span class="badge ok">succeeded' in after
    assert ">pending<" not in after and "every 1s" not in after
    assert "<dt>Floor (min)</dt><dd><strong>4</strong>" in after


def test_a_deployment_without_autoscaler_is_not_offered_raise_the_max(world, operator):
    plain = world.deployment("plain", replicas=2)
    scaled = world.deployment("scaled", replicas=2)
    world.keda(scaled, min_replicas=2, max_replicas=8)
    client = login(operator)

    assert 'name="raise_max"' not in client.get(controls_url(plain), **HTMX).content.decode()
    assert 'name="raise_max"' in client.get(controls_url(scaled), **HTMX).content.decode()
    applied = client.post(controls_url(plain), {"replicas": 3, "mode": "floor", "reason": "r"}, **HTMX)
    assert applied.status_code == 200 and ScaleAction.objects.get().request["raise_max"] is False


def test_a_floor_that_raised_an_hpa_max_to_match_is_not_called_pinned(world, operator, run_on_commit):
    dep = world.deployment(replicas=2)
    world.hpa(dep, min_replicas=1, max_replicas=4)
    action = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=6,
        raise_max=True,
        reason="launch",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=60,
    )

    html = login(operator).get(controls_url(dep), **HTMX).content.decode()

    assert "<dt>Floor = max</dt>" in html and f"#{action.id}</a>): the HPA keeps exactly 6 replicas" in html
    assert "<dt>Pinned</dt>" not in html


def test_an_hpa_pinned_with_min_equal_to_max_is_still_called_pinned(world, operator, run_on_commit):
    dep = world.deployment(replicas=2)
    world.hpa(dep, min_replicas=1, max_replicas=4)
    run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=3,
        mode="pin",
        reason="hold",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=60,
    )

    html = login(operator).get(controls_url(dep), **HTMX).content.decode()

    assert '<dt>Pinned</dt><dd><span class="badge near">at 3</span>' in html and "Floor = max" not in html


def test_an_operator_ends_an_active_override_from_the_controls(world, operator, run_on_commit):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    override = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=5,
        reason="launch",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=120,
    )
    client = login(operator)
    end_url = reverse("scaling:override-end", args=[override.id])
    assert f'hx-post="{end_url}"' in client.get(controls_url(dep), **HTMX).content.decode()

    response = run_on_commit(client.post, end_url, **HTMX)

    restore = ScaleAction.objects.get(operation="restore")
    assert (restore.actor_label, restore.source, restore.status) == ("alice", "ui", "succeeded")
    assert world.so_spec()["spec"]["minReplicaCount"] == 2
    html = response.content.decode()
    assert f"Action #{restore.id}" in html and "Active overrides" not in html


def test_a_viewer_cannot_end_an_override(world, operator, viewer, run_on_commit):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    override = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=5,
        reason="launch",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=120,
    )

    response = login(viewer).post(reverse("scaling:override-end", args=[override.id]))

    assert response.status_code == 403 and not ScaleAction.objects.filter(operation="restore").exists()


def test_the_api_ends_an_override_once(world, operator, viewer, run_on_commit):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    override = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=5,
        reason="launch",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=120,
    )
    url = f"/api/v1/actions/{override.id}/end/"
    as_viewer, as_operator = APIClient(), APIClient()
    as_viewer.force_authenticate(viewer)
    as_operator.force_authenticate(operator)

    assert as_viewer.post(url, {"reason": "done"}, format="json").status_code == 403
    ended = run_on_commit(as_operator.post, url, {"reason": "done"}, format="json")
    again = as_operator.post(url, {}, format="json")

    assert ended.status_code == 202 and ended.json()["operation"] == "restore"
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    assert world.so_spec()["spec"]["minReplicaCount"] == 2


def test_the_action_page_of_an_active_override_offers_end_now_to_operators(world, operator, viewer, run_on_commit):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    override = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=5,
        reason="launch",
        actor=Actor.of(operator),
        source="ui",
        ttl_minutes=120,
    )
    url = reverse("scaling:action", args=[override.id])
    end_url = reverse("scaling:override-end", args=[override.id])
    assert end_url not in login(viewer).get(url).content.decode()
    client = login(operator)
    assert f'action="{end_url}"' in client.get(url).content.decode()

    response = run_on_commit(client.post, end_url, {"reason": "launch done"})

    restore = ScaleAction.objects.get(operation="restore")
    assert response.status_code == 302 and response["Location"] == reverse("scaling:action", args=[restore.id])
    assert "launch done" in restore.reason
    assert end_url not in client.get(url).content.decode()  # ended: no second button
