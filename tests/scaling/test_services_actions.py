"""Scaling a deployment to N: what is written where, through the fake Kubernetes API over HTTP.

The quota and actions in flight: test_services_in_flight.py.
"""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from fleet.models import Autoscaler, ModelDeployment
from scaling.models import ScaleAction
from scaling.services import Actor, scale_action_request

MERGE = "application/merge-patch+json"


def ask(world, run_on_commit, deployment, replicas, **kw):
    kw.setdefault("reason", "launch traffic")
    kw.setdefault("actor", Actor(label="alice", key="user:1"))
    kw.setdefault("source", ScaleAction.Source.API)
    action = run_on_commit(scale_action_request, deployment=deployment, replicas=replicas, **kw)
    action.refresh_from_db()
    return action


def test_it_raises_a_keda_floor_with_a_merge_patch_carrying_the_resource_version(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    rv = world.so_spec()["metadata"]["resourceVersion"]

    action = ask(world, run_on_commit, dep, 4)

    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    [patch] = world.patches()
    assert patch.path == "/apis/keda.sh/v1alpha1/namespaces/llm/scaledobjects/llama"
    assert patch.content_type.startswith(MERGE)
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": {"minReplicaCount": 4}}
    assert world.so_spec()["spec"]["minReplicaCount"] == 4
    assert (action.target_kind, action.target_name) == ("scaledobject", "llama")
    assert action.before == {"min_replicas": 1} and action.after == {"min_replicas": 4}
    assert action.fields == ["spec.minReplicaCount"]
    assert action.response_code == 200 and action.resource_version_after != rv
    assert Autoscaler.objects.get(kind="scaledobject", name="llama").min_replicas == 4


def test_it_never_writes_the_replicas_of_an_autoscaled_deployment_nor_kedas_own_hpa(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, with_hpa=True)

    ask(world, run_on_commit, dep, 3)

    paths = [r.path for r in world.patches()]
    assert paths == ["/apis/keda.sh/v1alpha1/namespaces/llm/scaledobjects/llama"]
    assert world.kube.get("Deployment", "llm", "llama")["spec"]["replicas"] == 2


def test_it_pins_a_keda_deployment_with_the_paused_replicas_annotation(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)

    action = ask(world, run_on_commit, dep, 3, mode="pin")

    [patch] = world.patches()
    assert patch.body["metadata"]["annotations"] == {"autoscaling.keda.sh/paused-replicas": "3"}
    assert "spec" not in patch.body
    assert action.after == {"paused_replicas": 3} and action.before == {"paused_replicas": None}
    assert world.so_spec()["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "3"


def test_it_raises_an_hpa_floor_through_min_replicas(world, run_on_commit):
    dep = world.deployment()
    world.hpa(dep, min_replicas=1, max_replicas=6)

    action = ask(world, run_on_commit, dep, 5)

    [patch] = world.patches()
    assert patch.path == "/apis/autoscaling/v2/namespaces/llm/horizontalpodautoscalers/llama"
    assert patch.body["spec"] == {"minReplicas": 5}
    assert patch.body["metadata"]["resourceVersion"]
    assert action.target_kind == "hpa" and action.after == {"min_replicas": 5}


def test_it_pins_an_hpa_by_setting_min_and_max_and_remembers_the_old_max(world, run_on_commit):
    dep = world.deployment()
    world.hpa(dep, min_replicas=1, max_replicas=6)

    action = ask(world, run_on_commit, dep, 3, mode="pin", ttl_minutes=60)

    [patch] = world.patches()
    assert patch.body["spec"] == {"minReplicas": 3, "maxReplicas": 3}
    assert action.before == {"min_replicas": 1, "max_replicas": 6}
    assert action.expires_at is not None


def test_it_scales_a_deployment_without_autoscaler_through_its_scale_subresource(world, run_on_commit):
    dep = world.deployment(replicas=2)

    action = ask(world, run_on_commit, dep, 5)

    [patch] = world.patches()
    assert patch.path == "/apis/apps/v1/namespaces/llm/deployments/llama/scale"
    assert patch.body["spec"] == {"replicas": 5}
    assert patch.body["metadata"]["resourceVersion"]
    assert action.target_kind == "deployment" and action.before == {"replicas": 2} and action.after == {"replicas": 5}
    assert ModelDeployment.objects.get(id=dep.id).replicas_desired == 5


def test_it_raises_the_max_too_when_asked(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, max_replicas=4)

    action = ask(world, run_on_commit, dep, 6, raise_max=True)

    [patch] = world.patches()
    assert patch.body["spec"] == {"minReplicaCount": 6, "maxReplicaCount": 6}
    assert action.after == {"min_replicas": 6, "max_replicas": 6}


# --------------------------------------------------------------------------- refusals write nothing


def refused(world, run_on_commit, dep, replicas, **kw) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        ask(world, run_on_commit, dep, replicas, **kw)
    assert world.patches() == []
    action = ScaleAction.objects.get(id=exc.value.extra["action_id"])
    assert action.status == ScaleAction.Status.REJECTED
    assert action.error == exc.value.message
    return exc.value


def test_it_refuses_replicas_above_the_autoscaler_max(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, max_replicas=4)

    error = refused(world, run_on_commit, dep, 5)

    assert error.status == 409 and error.field == "replicas"
    assert "max (4)" in error.message and "raise_max" in error.message
    assert world.kube.requests == []


def test_it_refuses_a_namespace_outside_the_allow_list(world, run_on_commit):
    dep = world.deployment(namespace="batch")
    world.keda(dep)

    error = refused(world, run_on_commit, dep, 2)

    assert error.status == 409 and "allow-list" in error.message


def test_it_refuses_a_deployment_targeted_by_an_hpa_and_a_scaledobject(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, with_hpa=False)
    world.hpa(dep, name="llama-cpu")

    error = refused(world, run_on_commit, dep, 2)

    assert error.status == 409 and "fight" in error.message
    assert {a["kind"] for a in error.extra["autoscalers"]} == {"keda", "hpa"}


def test_it_refuses_what_the_gpu_quota_cannot_hold_with_the_numbers(world, run_on_commit):
    dep = world.deployment(replicas=2, gpus=4)
    world.keda(dep, max_replicas=10)
    world.quota(hard=16, used=12)

    error = refused(world, run_on_commit, dep, 4)

    assert error.status == 409
    assert error.extra | {"action_id": 0} == {
        "quota": "gpu-quota",
        "resource": "requests.nvidia.com/gpu",
        "hard": 16,
        "used": 12,
        "in_flight": 0,
        "available": 4,
        "needed": 8,
        "action_id": 0,
    }
    assert "need 8" in error.message and "12 of 16" in error.message


def test_it_allows_what_the_quota_can_hold(world, run_on_commit):
    dep = world.deployment(replicas=2, gpus=4)
    world.keda(dep, max_replicas=10)
    world.quota(hard=16, used=8)

    assert ask(world, run_on_commit, dep, 4).status == ScaleAction.Status.SUCCEEDED


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"replicas": -1}, "replicas"),
        ({"replicas": 2, "reason": "  "}, "reason"),
        ({"replicas": 2, "ttl_minutes": 0}, "ttl_minutes"),
        ({"replicas": 2, "mode": "exact"}, "mode"),
    ],
)
def test_it_refuses_bad_input_with_the_field_at_fault(world, run_on_commit, kw, field):
    dep = world.deployment()
    world.keda(dep)
    replicas = kw.pop("replicas")

    error = refused(world, run_on_commit, dep, replicas, **kw)

    assert error.status == 400 and error.field == field


def test_it_refuses_a_time_boxed_floor_below_the_current_one(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=3)

    error = refused(world, run_on_commit, dep, 2, ttl_minutes=30)

    assert error.status == 409 and "only raises" in error.message


# --------------------------------------------------------------------------- conflicts and errors


def test_it_rereads_and_retries_after_a_409_conflict(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh/v1alpha1/namespaces/llm/scaledobjects/llama", 409, method="PATCH", times=2)

    action = ask(world, run_on_commit, dep, 4)

    assert action.status == ScaleAction.Status.SUCCEEDED
    gets = world.kube.requests_to("/apis/keda.sh/v1alpha1/namespaces/llm/scaledobjects/llama", "GET")
    assert len(world.patches()) == 3 and len(gets) == 3
    assert world.so_spec()["spec"]["minReplicaCount"] == 4


def test_it_fails_after_three_conflicts(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh", 409, method="PATCH")

    action = ask(world, run_on_commit, dep, 4)

    assert action.status == ScaleAction.Status.FAILED
    assert "409" in action.error and "\n" not in action.error
    assert len(world.patches()) == 3


def test_it_retries_a_transient_error_then_succeeds(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh", 503, method="PATCH", times=2)

    action = ask(world, run_on_commit, dep, 4)

    assert action.status == ScaleAction.Status.SUCCEEDED
    assert action.attempts == 3


def test_it_fails_with_one_line_on_a_permanent_error(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh", 403, method="PATCH")

    action = ask(world, run_on_commit, dep, 4)

    assert action.status == ScaleAction.Status.FAILED
    assert "forbidden" in action.error and "\n" not in action.error
    assert action.response_code == 403
    assert len(world.patches()) == 1


# --------------------------------------------------------------------------- idempotency and dry run


def test_a_retried_request_with_the_same_idempotency_key_returns_the_first_action(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)

    first = ask(world, run_on_commit, dep, 4, idempotency_key="abc")
    again = ask(world, run_on_commit, dep, 4, idempotency_key="abc")

    assert again.pk == first.pk
    assert len(world.patches()) == 1
    assert ScaleAction.objects.count() == 1


def test_the_same_key_from_another_actor_is_another_request(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)

    first = ask(world, run_on_commit, dep, 4, idempotency_key="abc")
    other = ask(world, run_on_commit, dep, 5, idempotency_key="abc", actor=Actor(label="bob", key="user:2"))

    assert other.pk != first.pk


def test_the_same_key_for_a_different_request_is_refused(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    ask(world, run_on_commit, dep, 4, idempotency_key="abc")

    with pytest.raises(ApplicationError) as exc:
        ask(world, run_on_commit, dep, 5, idempotency_key="abc")

    assert exc.value.status == 409 and "different request" in exc.value.message


def test_a_dry_run_writes_nothing_and_stores_nothing(world, run_on_commit):
    dep = world.deployment(replicas=2, gpus=2)
    world.keda(dep, min_replicas=1)
    world.quota(hard=16, used=4)

    action = run_on_commit(
        scale_action_request,
        deployment=dep,
        replicas=5,
        reason="what if",
        actor=Actor(label="a", key="user:1"),
        source="api",
        dry_run=True,
    )

    assert action.pk is None
    assert ScaleAction.objects.count() == 0
    assert world.kube.requests == []
    assert action.after == {"min_replicas": 5}
    assert action.preview.replicas_after == 5
    assert action.preview.quota == [
        {
            "quota": "gpu-quota",
            "resource": "requests.nvidia.com/gpu",
            "hard": 16,
            "used": 4,
            "in_flight": 0,
            "needed": 6,
            "available_after": 6,
        }
    ]


def test_a_dry_run_of_a_floor_on_a_paused_scaledobject_shows_it_stays_pinned(world, run_on_commit, monkeypatch):
    from decimal import Decimal

    from scaling.services import actions

    monkeypatch.setattr(actions, "replica_cost_per_hour", lambda deployment: Decimal("6.88"))
    dep = world.deployment(replicas=3, gpus=1)
    world.keda(dep, min_replicas=1, max_replicas=8, paused_replicas=3)
    world.quota(hard=16, used=3)

    action = scale_action_request(
        deployment=dep,
        replicas=6,
        reason="what if",
        actor=Actor(label="a", key="user:1"),
        source="api",
        dry_run=True,
    )

    preview = action.preview
    assert (preview.replicas_before, preview.replicas_after, preview.pinned_replicas) == (3, 3, 3)
    assert preview.cost_per_hour_usd_before == preview.cost_per_hour_usd_after == Decimal("20.64")
    assert (preview.replicas_when_unpinned, preview.cost_per_hour_usd_when_unpinned) == (6, Decimal("41.28"))
    # The quota is counted for when the floor takes effect, as the request itself is checked.
    assert preview.quota[0]["needed"] == 3
    assert action.after == {"min_replicas": 6}
    assert any(n.startswith("no effect while pinned") and "mode pin" in n for n in action.notes)
    assert world.kube.requests == []


def test_a_floor_on_a_paused_scaledobject_is_written_and_the_audit_says_it_waits_for_the_unpin(world, run_on_commit):
    dep = world.deployment(replicas=3)
    world.keda(dep, min_replicas=1, max_replicas=8, paused_replicas=3)

    action = ask(world, run_on_commit, dep, 6)

    assert action.status == ScaleAction.Status.SUCCEEDED
    assert world.so_spec()["spec"]["minReplicaCount"] == 6
    assert world.so_spec()["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "3"
    assert any(n.startswith("no effect while pinned") for n in action.notes)


def test_a_dry_run_pin_on_a_paused_scaledobject_previews_the_new_pin(world, run_on_commit):
    dep = world.deployment(replicas=3)
    world.keda(dep, min_replicas=1, max_replicas=8, paused_replicas=3)

    action = scale_action_request(
        deployment=dep,
        replicas=5,
        mode="pin",
        reason="what if",
        actor=Actor(label="a", key="user:1"),
        source="api",
        dry_run=True,
    )

    assert (action.preview.replicas_after, action.preview.pinned_replicas) == (5, 5)
    assert not any(n.startswith("no effect while pinned") for n in action.notes)
