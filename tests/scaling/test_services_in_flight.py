"""The GPU quota counts what pending scale actions have promised, through the fake Kubernetes API."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from core.errors import ApplicationError
from scaling import decisions
from scaling.models import ScaleAction
from scaling.services import Actor, scale_action_request

ALICE_KEY = Actor(label="alice", key="user:1")


def stored(dep, replicas, actor=ALICE_KEY, **kw) -> ScaleAction:
    """Ask, store the pending action, and leave it there (no worker has picked it up yet)."""
    return scale_action_request(
        deployment=dep,
        replicas=replicas,
        mode=kw.pop("mode", "floor"),
        reason="r",
        actor=actor,
        source="api",
        dispatch=False,
        **kw,
    )


@pytest.fixture
def two_teams_models(world):
    """Two deployments of 4 GPUs a replica at 2 replicas each, one namespace quota: 16 hard, 8 used."""
    llama, qwen = world.deployment("llama", replicas=2, gpus=4), world.deployment("qwen", replicas=2, gpus=4)
    world.keda(llama, max_replicas=10)
    world.quota(hard=16, used=8)
    return llama, qwen


def test_the_quota_counts_what_pending_actions_on_other_deployments_will_take(world, two_teams_models):
    llama, qwen = two_teams_models
    stored(llama, 3)  # +1 replica: 4 GPUs promised, not yet in the quota's used

    with pytest.raises(ApplicationError) as exc:
        stored(qwen, 4)  # +2 replicas: 8 GPUs, only 4 left

    assert exc.value.status == 409
    assert exc.value.message == (
        "2 more replicas need 8 nvidia.com/gpu but quota gpu-quota has 4 left "
        "(8 of 16 used, 4 promised to 1 action in flight)"
    )
    assert (exc.value.extra["in_flight"], exc.value.extra["available"]) == (4, 4)
    assert ScaleAction.objects.get(id=exc.value.extra["action_id"]).status == ScaleAction.Status.REJECTED
    assert world.kube.requests == []


def test_actions_on_the_same_deployment_overlap_rather_than_add_up(world, two_teams_models):
    llama, _ = two_teams_models
    stored(llama, 4)  # +2: 8 GPUs, the whole headroom

    again = stored(llama, 4, ttl_minutes=60)  # the same replicas again: nothing more needed

    assert again.status == ScaleAction.Status.PENDING


def test_several_pending_actions_of_one_deployment_count_their_highest_ask(world, two_teams_models):
    llama, qwen = two_teams_models
    stored(llama, 3)
    stored(llama, 3, mode="pin")

    assert stored(qwen, 3).status == ScaleAction.Status.PENDING  # 4 + 4 = 8: fits exactly
    with pytest.raises(ApplicationError):
        stored(qwen, 4)


def test_finished_actions_no_longer_count_as_in_flight(world, two_teams_models):
    llama, qwen = two_teams_models
    first = stored(llama, 4)
    ScaleAction.objects.filter(id=first.id).update(status=ScaleAction.Status.FAILED)

    assert stored(qwen, 4).status == ScaleAction.Status.PENDING


def test_a_dry_run_shows_what_actions_in_flight_have_promised(world, two_teams_models):
    llama, qwen = two_teams_models
    stored(llama, 3)

    preview = scale_action_request(
        deployment=qwen, replicas=3, reason="what if", actor=ALICE_KEY, source="api", dry_run=True
    ).preview

    [quota] = preview.quota
    assert (quota["in_flight"], quota["needed"], quota["available_after"]) == (4, 4, 0)


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_cannot_both_take_the_last_gpus(world, two_teams_models, monkeypatch):
    """Request A has checked the quota and is about to store its action when request B arrives."""
    llama, qwen = two_teams_models
    real_resolve = decisions.resolve
    a_checked, results = threading.Event(), {}

    def resolve_then_dawdle(**kwargs):
        plan = real_resolve(**kwargs)
        if not a_checked.is_set():
            a_checked.set()
            time.sleep(0.5)  # B runs now
        return plan

    monkeypatch.setattr(decisions, "resolve", resolve_then_dawdle)

    def request(name, dep, actor):
        try:
            results[name] = stored(dep, 4, actor=actor).status
        except ApplicationError as exc:
            results[name] = exc.message
        finally:
            connection.close()

    a = threading.Thread(target=request, args=("a", llama, ALICE_KEY))
    b = threading.Thread(target=request, args=("b", qwen, Actor(label="bob", key="user:2")))
    a.start()
    a_checked.wait(5)
    b.start()
    a.join()
    b.join()

    assert results["a"] == ScaleAction.Status.PENDING
    assert "promised to 1 action in flight" in results["b"], results
    assert ScaleAction.objects.filter(status=ScaleAction.Status.PENDING).count() == 1
