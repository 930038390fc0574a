"""Carrying out an action: no transaction across the cluster calls, one action per object at a time,
and an outcome recorded only by the claim that still owns the action."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.db.models import F
from django.utils import timezone

from fleet.models import Autoscaler, ModelDeployment
from scaling.models import ScaleAction
from scaling.services import (
    TargetBusy,
    actions_redispatch_stuck,
    execution,
    quota_update,
    scale_action_execute,
    scale_action_run_inline,
)
from scaling.tasks import apply_scale_action
from tests.scaling.execution_helpers import (
    ALICE,
    pending,
)

# --------------------------------------------------------------------------- no transaction across cluster I/O


@pytest.mark.parametrize("kind", ["scaledobject", "hpa", "deployment"])
def test_it_holds_no_transaction_while_it_reads_and_writes_the_cluster(world, cluster_calls, kind):
    dep = world.deployment()
    if kind == "scaledobject":
        world.keda(dep)
    elif kind == "hpa":
        world.hpa(dep)
    action = pending(dep, 3)
    outside = len(connection.atomic_blocks)  # the test's own transaction, if any

    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert [name for name, _ in cluster_calls] == [
        "read_object",
        {"scaledobject": "patch_scaledobject", "hpa": "patch_hpa", "deployment": "scale_deployment"}[kind],
    ]
    assert {depth for _, depth in cluster_calls} == {outside}


def test_it_holds_no_transaction_while_it_changes_a_quota(world, cluster_calls):
    quota = world.quota(hard=16, used=4)
    action = quota_update(quota=quota, hard={"requests.nvidia.com/gpu": 24}, reason="r", actor=ALICE, source="api")
    outside = len(connection.atomic_blocks)

    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert cluster_calls == [("read_object", outside), ("patch_quota", outside)]


def test_it_waits_out_a_409_with_no_transaction_open(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh", 409, method="PATCH", times=2)
    action = pending(dep, 4)
    outside = len(connection.atomic_blocks)
    pauses = []

    done = scale_action_execute(action_id=action.id, sleep=lambda s: pauses.append(len(connection.atomic_blocks)))

    assert done.status == ScaleAction.Status.SUCCEEDED
    assert [name for name, _ in cluster_calls] == ["read_object", "patch_scaledobject"] * 3
    assert {depth for _, depth in cluster_calls} == {outside} and pauses == [outside, outside]
    # The audit still carries what the write was computed from and what it produced.
    assert done.resource_version_before and done.resource_version_after != done.resource_version_before
    assert done.attempts == 1 and done.response_code == 200


# --------------------------------------------------------------------------- one action per object at a time


def test_a_second_action_on_the_same_object_waits_while_the_first_is_running(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep)
    first, second = pending(dep, 4), pending(dep, 6)
    assert execution._claim(first.id) == 1  # a worker is applying the first one

    with pytest.raises(TargetBusy):
        scale_action_execute(action_id=second.id)

    second.refresh_from_db()
    assert (second.status, second.attempts) == (ScaleAction.Status.PENDING, 0)
    assert cluster_calls == []


def test_actions_on_other_objects_are_not_held_up(world):
    llama, qwen = world.deployment("llama"), world.deployment("qwen")
    world.keda(llama)
    execution._claim(pending(llama, 4).id)

    done = scale_action_execute(action_id=pending(qwen, 3).id)

    assert done.status == ScaleAction.Status.SUCCEEDED


def test_an_action_stuck_running_past_the_time_limit_does_not_hold_up_its_object(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep)
    lost = pending(dep, 4)
    execution._claim(lost.id)
    ScaleAction.objects.filter(id=lost.id).update(
        started_at=timezone.now() - timedelta(seconds=execution.STUCK_RUNNING_SECONDS + 1)
    )

    assert scale_action_execute(action_id=pending(dep, 6).id).status == ScaleAction.Status.SUCCEEDED


def test_the_task_leaves_a_busy_action_pending_for_the_reconciler(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep)
    first, second = pending(dep, 4), pending(dep, 6)
    execution._claim(first.id)

    result = apply_scale_action.delay(second.id).get()

    assert "waiting for another action" in result
    assert ScaleAction.objects.get(id=second.id).status == ScaleAction.Status.PENDING
    assert cluster_calls == []


def test_scaling_tick_waits_for_the_action_holding_the_object_then_applies_its_own(world):
    dep = world.deployment()
    world.keda(dep)
    first, second = pending(dep, 4), pending(dep, 6)
    execution._claim(first.id)

    def the_worker_finishes_the_first(_seconds):
        ScaleAction.objects.filter(id=first.id).update(status=ScaleAction.Status.SUCCEEDED)

    done = scale_action_run_inline(action_id=second.id, sleep=the_worker_finishes_the_first)

    assert done.status == ScaleAction.Status.SUCCEEDED
    assert world.so_spec()["spec"]["minReplicaCount"] == 6


# --------------------------------------------------------------------------- the outcome belongs to the claim


def test_an_outcome_is_dropped_when_the_reconciler_handed_the_action_to_another_worker(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    action = pending(dep, 4)

    def the_reconciler_and_another_worker_take_it_over():
        ScaleAction.objects.filter(id=action.id).update(status=ScaleAction.Status.PENDING)
        ScaleAction.objects.filter(id=action.id, status=ScaleAction.Status.PENDING).update(
            status=ScaleAction.Status.RUNNING, attempts=F("attempts") + 1
        )

    cluster_calls.on_write = the_reconciler_and_another_worker_take_it_over

    scale_action_execute(action_id=action.id)

    action.refresh_from_db()
    assert (action.status, action.attempts, action.finished_at) == (ScaleAction.Status.RUNNING, 2, None)
    # Nothing else of the dropped outcome landed either: the synced row is the new owner's to update.
    assert Autoscaler.objects.get(kind="scaledobject").min_replicas == 1


def test_an_outcome_still_lands_when_the_reconciler_put_it_back_but_nobody_claimed_it(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    action = pending(dep, 4)
    cluster_calls.on_write = lambda: ScaleAction.objects.filter(id=action.id).update(status=ScaleAction.Status.PENDING)

    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED and done.after == {"min_replicas": 4}
    assert Autoscaler.objects.get(kind="scaledobject").min_replicas == 4
    assert scale_action_execute(action_id=action.id) is None  # the re-sent message finds nothing to do
    assert len(world.patches()) == 1


def test_a_failure_is_not_recorded_over_another_workers_claim(world, cluster_calls):
    dep = world.deployment()
    world.keda(dep)
    world.kube.fail("/apis/keda.sh", 403, method="PATCH")
    action = pending(dep, 4)

    def taken_over():
        ScaleAction.objects.filter(id=action.id).update(attempts=F("attempts") + 1)

    cluster_calls.on_write = taken_over

    scale_action_execute(action_id=action.id)

    action.refresh_from_db()
    assert action.status == ScaleAction.Status.RUNNING and action.error == ""


def test_the_reconciler_puts_a_lost_running_action_back_and_it_runs_once(world):
    dep = world.deployment()
    world.keda(dep)
    action = pending(dep, 4)
    execution._claim(action.id)  # its worker died here

    later = timezone.now() + timedelta(seconds=execution.STUCK_RUNNING_SECONDS + 120)
    assert actions_redispatch_stuck(now=later, dispatch=False) == [action.id]
    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED and done.attempts == 2
    assert len(world.patches()) == 1


@pytest.mark.django_db(transaction=True)
def test_other_writers_are_not_locked_out_while_the_cluster_answers(world, cluster_calls):
    """What the held transaction cost: on SQLite the one write lock of the whole app, on PostgreSQL
    the deployment's row, both for as long as the API server took to answer."""
    dep = world.deployment()
    world.keda(dep)
    action = pending(dep, 4)
    results = []

    def a_page_saves_the_deployment_meanwhile():
        try:
            with connection.cursor() as cursor:  # this thread's own connection; wait 0.2 s, not 30
                cursor.execute(
                    "PRAGMA busy_timeout = 200" if connection.vendor == "sqlite" else "SET lock_timeout = '200ms'"
                )
            ModelDeployment.objects.filter(id=dep.id).update(ttft_slo_seconds=1.5)
            results.append("written")
        except OperationalError as exc:
            results.append(f"locked out: {exc}")
        finally:
            connection.close()

    def during_the_patch():
        thread = threading.Thread(target=a_page_saves_the_deployment_meanwhile)
        thread.start()
        thread.join()

    cluster_calls.on_write = during_the_patch

    done = scale_action_execute(action_id=action.id)

    assert results == ["written"]
    assert done.status == ScaleAction.Status.SUCCEEDED
