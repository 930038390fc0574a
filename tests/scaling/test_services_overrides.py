"""Time-boxed overrides: restored when they expire, unless someone changed the value meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core.errors import ApplicationError
from scaling.models import ScaleAction
from scaling.services import Actor, override_end, scale_action_request, scaling_tick_run

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
ALICE = Actor(label="alice", key="user:1")


def ask(run_on_commit, deployment, replicas, **kw):
    kw.setdefault("reason", "incident 42")
    action = run_on_commit(
        scale_action_request, deployment=deployment, replicas=replicas, actor=ALICE, source="ui", **kw
    )
    action.refresh_from_db()
    return action


def tick(run_on_commit):
    return run_on_commit(scaling_tick_run)


def min_count(world):
    return world.so_spec()["spec"]["minReplicaCount"]


def test_it_restores_the_previous_floor_when_the_override_expires(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        override = ask(run_on_commit, dep, 4, ttl_minutes=30)
    assert override.expires_at == T0 + timedelta(minutes=30)
    assert min_count(world) == 4

    with time_machine.travel(T0 + timedelta(minutes=29), tick=False):
        assert tick(run_on_commit).restores == []
    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        result = tick(run_on_commit)

    assert min_count(world) == 1
    [restore_id] = result.restores
    restore = ScaleAction.objects.get(id=restore_id)
    assert restore.status == ScaleAction.Status.SUCCEEDED
    assert (restore.source, restore.actor_label, restore.operation) == ("expiry", "expiry", "restore")
    assert restore.before == {"min_replicas": 4} and restore.after == {"min_replicas": 1}
    override.refresh_from_db()
    assert override.restored_at is not None and override.restore_action_id == restore.pk


def test_it_restores_an_hpa_pin_to_the_old_min_and_max(world, run_on_commit):
    dep = world.deployment()
    world.hpa(dep, min_replicas=1, max_replicas=6)
    with time_machine.travel(T0, tick=False):
        ask(run_on_commit, dep, 3, mode="pin", ttl_minutes=60)
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        tick(run_on_commit)

    spec = world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 6)


def test_it_removes_the_keda_pin_when_it_expires(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep)
    with time_machine.travel(T0, tick=False):
        ask(run_on_commit, dep, 3, mode="pin", ttl_minutes=60)
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        tick(run_on_commit)

    last = world.patches()[-1]
    assert last.body["metadata"]["annotations"] == {"autoscaling.keda.sh/paused-replicas": None}
    assert "autoscaling.keda.sh/paused-replicas" not in world.so_spec()["metadata"]["annotations"]


def test_it_leaves_a_value_someone_changed_meanwhile_and_says_so(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        override = ask(run_on_commit, dep, 4, ttl_minutes=30)
    so = world.so_spec()
    so["spec"]["minReplicaCount"] = 5  # someone ran kubectl edit
    del so["metadata"]["resourceVersion"]
    world.kube.load(so)
    writes_before = len(world.patches())

    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        [restore_id] = tick(run_on_commit).restores

    assert len(world.patches()) == writes_before
    assert min_count(world) == 5
    restore = ScaleAction.objects.get(id=restore_id)
    assert restore.status == ScaleAction.Status.SUCCEEDED
    assert restore.fields == []
    assert any(n.startswith("left as is: changed by someone else since") for n in restore.notes)
    override.refresh_from_db()
    assert override.restored_at is not None


def test_overlapping_overrides_take_the_highest_floor_and_unwind_to_the_baseline(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=2)
    with time_machine.travel(T0, tick=False):
        ask(run_on_commit, dep, 6, ttl_minutes=60)
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        second = ask(run_on_commit, dep, 4, ttl_minutes=120)
    assert min_count(world) == 6
    assert second.after == {"min_replicas": 6} and second.fields == []

    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        tick(run_on_commit)
    assert min_count(world) == 4
    with time_machine.travel(T0 + timedelta(minutes=131), tick=False):
        tick(run_on_commit)
    assert min_count(world) == 2


def test_a_permanent_change_during_an_override_becomes_the_baseline(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        ask(run_on_commit, dep, 4, ttl_minutes=30)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        ask(run_on_commit, dep, 3)  # no duration: the new normal
    assert min_count(world) == 4  # the override still holds the higher floor

    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        tick(run_on_commit)
    assert min_count(world) == 3


def test_two_ticks_restore_an_override_once(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        ask(run_on_commit, dep, 4, ttl_minutes=30)
    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        first = tick(run_on_commit)
        second = tick(run_on_commit)

    assert len(first.restores) == 1 and second.restores == []
    assert ScaleAction.objects.filter(operation="restore").count() == 1


def test_an_override_that_runs_after_its_expiry_writes_nothing(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        action = scale_action_request(deployment=dep, replicas=4, reason="r", actor=ALICE, source="ui", ttl_minutes=30)
    # No worker picked it up (on_commit never ran); the reconciler finds it an hour later.
    with time_machine.travel(T0 + timedelta(minutes=90), tick=False):
        result = tick(run_on_commit)

    assert result.redispatched == [action.pk]
    action.refresh_from_db()
    assert action.status == ScaleAction.Status.FAILED and "expired" in action.error
    assert world.patches() == []


def test_it_ends_an_override_early_and_restores_like_an_expiry(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    bob = Actor(label="bob", key="user:2")
    with time_machine.travel(T0, tick=False):
        override = ask(run_on_commit, dep, 4, ttl_minutes=120)
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        restore = run_on_commit(override_end, override=override, actor=bob, source="api", reason="incident over")

        restore.refresh_from_db()
        override.refresh_from_db()
        assert min_count(world) == 1
        assert (restore.operation, restore.status, restore.actor_label, restore.source) == (
            "restore",
            "succeeded",
            "bob",
            "api",
        )
        assert "ended early by bob" in restore.reason and "incident over" in restore.reason
        assert override.expires_at == T0 + timedelta(minutes=10) and override.restored_at is not None
        assert override.restore_action_id == restore.pk
        with pytest.raises(ApplicationError, match="already ended") as refused:
            override_end(override=override, actor=bob, source="api")
        assert refused.value.status == 409
    with time_machine.travel(T0 + timedelta(minutes=121), tick=False):
        assert tick(run_on_commit).restores == []  # the expiry finds nothing left to restore
    assert ScaleAction.objects.filter(operation="restore").count() == 1


def test_it_refuses_to_end_an_action_that_is_not_a_time_boxed_override(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(T0, tick=False):
        permanent = ask(run_on_commit, dep, 4)
        with pytest.raises(ApplicationError, match="not an active time-boxed override"):
            override_end(override=permanent, actor=ALICE, source="ui")
    assert min_count(world) == 4
