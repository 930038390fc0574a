"""Carrying out an action when a worker dies at any point: the intent is recorded before the write,
the re-run finds what landed, and claims of dead processes are taken over."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

import pytest
import time_machine
from django.db.models import F
from django.utils import timezone

from scaling.models import ScaleAction
from scaling.services import (
    actions_redispatch_stuck,
    execution,
    quota_update,
    scale_action_execute,
    scale_action_fail,
    workers,
)
from scaling.tasks import recover_lost_actions
from tests.scaling.execution_helpers import (
    ALICE,
    gone_process,
    kill_the_worker,
    killed,
    make_target,
    pending,
    rerun_after_the_reconciler,
    restore_due,
)

# --------------------------------------------------------------------------- the write protocol: crash at any point


@pytest.mark.parametrize(
    ("kind", "k8s_kind", "replicas", "written", "before"),
    [
        ("scaledobject", "ScaledObject", 3, {"min_replicas": 3}, {"min_replicas": 1}),
        ("hpa", "HorizontalPodAutoscaler", 2, {"min_replicas": 2}, {"min_replicas": 1}),
        ("deployment", "Deployment", 5, {"replicas": 5}, {"replicas": 4}),
    ],
)
def test_it_records_the_intent_before_it_writes(world, cluster_calls, kind, k8s_kind, replicas, written, before):
    dep = make_target(world, kind)
    rv = world.kube.get(k8s_kind, "llm", "llama")["metadata"]["resourceVersion"]
    action = pending(dep, replicas)
    seen = []
    cluster_calls.on_write = lambda: seen.append(ScaleAction.objects.get(id=action.id))

    done = scale_action_execute(action_id=action.id)

    [at_write] = seen
    assert at_write.status == ScaleAction.Status.RUNNING
    assert at_write.intent["write"] == written and at_write.intent["before"] == before
    assert at_write.intent["resource_version"] == rv and at_write.intent["claim"] == 1
    assert at_write.claimed_by == workers.this_process()
    assert done.status == ScaleAction.Status.SUCCEEDED and done.intent == at_write.intent


def test_it_records_a_quota_intent_before_it_writes(world, cluster_calls):
    quota = world.quota(hard=16, used=4)
    action = quota_update(quota=quota, hard={"requests.nvidia.com/gpu": 24}, reason="r", actor=ALICE, source="api")
    seen = []
    cluster_calls.on_write = lambda: seen.append(ScaleAction.objects.get(id=action.id).intent)

    scale_action_execute(action_id=action.id)

    assert seen[0]["after"] == {"hard": {"requests.nvidia.com/gpu": 24}}


def test_an_hpa_floor_written_before_the_worker_died_keeps_its_true_before_and_is_restored(world, cluster_calls):
    """The issue's first report: 1 -> 2 for 10 minutes, re-run, recorded before=2, the 1 lost for good."""
    dep = make_target(world, "hpa")
    action = pending(dep, 2, ttl_minutes=10)
    cluster_calls.after_write = kill_the_worker

    lost = killed(action.id)
    assert lost.status == ScaleAction.Status.RUNNING
    assert world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["spec"]["minReplicas"] == 2
    cluster_calls.after_write = None

    done = rerun_after_the_reconciler(action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert (done.before, done.after, done.baseline) == ({"min_replicas": 1}, {"min_replicas": 2}, {"min_replicas": 1})
    assert any(n.startswith("recovered: the worker was lost after writing min_replicas 2") for n in done.notes)
    assert done.response_code is None and "found on re-read" in done.response_body
    assert (
        done.resource_version_after
        == world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["metadata"]["resourceVersion"]
    )
    assert len(world.patches()) == 1  # the re-run wrote nothing again

    restore = restore_due(done, now=done.expires_at + timedelta(seconds=1))

    assert restore.status == ScaleAction.Status.SUCCEEDED, restore.error
    assert restore.after == {"min_replicas": 1}
    assert world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["spec"]["minReplicas"] == 1
    assert ScaleAction.objects.get(id=action.id).restored_at is not None


def test_a_deployment_scaled_before_the_worker_died_is_restored_even_though_it_expired_meanwhile(world, cluster_calls):
    """The issue's second report: 4 -> 5 for 3 minutes, then "expired before it could be applied;
    nothing was written" while the cluster kept 5 replicas for ever."""
    dep = make_target(world, "deployment")
    action = pending(dep, 5, ttl_minutes=3)
    cluster_calls.after_write = kill_the_worker
    killed(action.id)
    cluster_calls.after_write = None

    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        done = rerun_after_the_reconciler(action.id)
        assert done.status == ScaleAction.Status.SUCCEEDED, done.error
        assert (done.before, done.after) == ({"replicas": 4}, {"replicas": 5})
        assert "nothing was written" not in done.error + done.response_body
        restore = restore_due(done, now=timezone.now())

    assert restore.status == ScaleAction.Status.SUCCEEDED, restore.error
    assert world.kube.get("Deployment", "llm", "llama")["spec"]["replicas"] == 4
    assert [p.body["spec"] for p in world.patches()] == [{"replicas": 5}, {"replicas": 4}]


@pytest.mark.parametrize("kind", ["scaledobject", "hpa", "deployment"])
def test_a_worker_killed_between_the_intent_and_the_write_writes_on_the_re_run(world, cluster_calls, kind):
    dep = make_target(world, kind)
    action = pending(dep, 3 if kind != "deployment" else 5)
    cluster_calls.on_write = kill_the_worker
    lost = killed(action.id)
    assert lost.intent and world.patches() == []
    cluster_calls.on_write = None

    done = rerun_after_the_reconciler(action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert done.before == lost.intent["before"] and done.after == lost.intent["after"]
    assert done.response_code == 200 and len(world.patches()) == 1


def test_an_override_that_expired_before_its_write_was_sent_writes_nothing(world, cluster_calls):
    dep = make_target(world, "deployment")
    action = pending(dep, 5, ttl_minutes=3)
    cluster_calls.on_write = kill_the_worker
    killed(action.id)
    cluster_calls.on_write = None

    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        done = rerun_after_the_reconciler(action.id)

    assert (done.status, done.error) == (
        ScaleAction.Status.FAILED,
        "expired before it could be applied; nothing was written",
    )
    assert world.patches() == [] and world.kube.get("Deployment", "llm", "llama")["spec"]["replicas"] == 4


def test_an_override_that_expires_between_its_intent_and_its_write_writes_nothing(world, cluster_calls):
    dep = make_target(world, "hpa")
    action = pending(dep, 2, ttl_minutes=3)
    # The clock passes the expiry while the intent is being recorded: checked again before the write.
    original = execution._record_intent

    def record_then_time_passes(*args, **kwargs):
        original(*args, **kwargs)
        args[0].expires_at = timezone.now()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(execution, "_record_intent", record_then_time_passes)
        done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.FAILED and "nothing was written" in done.error
    assert world.patches() == []


def test_the_audit_does_not_say_nothing_was_written_when_a_lost_write_may_have_landed(world, cluster_calls):
    dep = make_target(world, "deployment")
    action = pending(dep, 5, ttl_minutes=3)
    cluster_calls.after_write = kill_the_worker
    killed(action.id)
    cluster_calls.after_write = None
    # Someone scaled it by hand after our write: nobody can tell any more whether ours landed.
    scaled = world.kube.get("Deployment", "llm", "llama")
    scaled["spec"]["replicas"] = 7
    del scaled["metadata"]["resourceVersion"]
    world.kube.load(scaled)

    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        done = rerun_after_the_reconciler(action.id)

    assert done.status == ScaleAction.Status.FAILED
    assert "nothing was written" not in done.error
    assert "an earlier try may have written replicas 5" in done.error
    assert world.kube.get("Deployment", "llm", "llama")["spec"]["replicas"] == 7


def test_a_write_whose_answer_never_came_is_found_on_the_retry(world):
    """The API server applied the PATCH but its answer outlived the client's timeout."""
    world.cluster.request_timeout_seconds = 0.3
    world.cluster.save()
    dep = make_target(world, "hpa")
    world.kube.delay(1.0, path="/apis/autoscaling", method="PATCH", after_applying=True)
    action = pending(dep, 2, ttl_minutes=10)

    with pytest.raises(execution.TransientActionError):
        scale_action_execute(action_id=action.id)
    assert ScaleAction.objects.get(id=action.id).status == ScaleAction.Status.PENDING
    world.kube.reset_switches()
    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert (done.before, done.baseline, done.attempts) == ({"min_replicas": 1}, {"min_replicas": 1}, 2)
    assert len(world.patches()) == 1


# --------------------------------------------------------------------------- claims of dead processes


def test_a_claim_held_by_a_process_that_is_gone_is_taken_over_at_once(world):
    dep = make_target(world, "scaledobject")
    action = pending(dep, 3)
    execution._claim(action.id)
    ScaleAction.objects.filter(id=action.id).update(claimed_by=gone_process())

    done = scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED and done.attempts == 2
    assert done.claimed_by == workers.this_process()


def test_a_claim_held_by_a_live_process_is_left_to_it(world):
    dep = make_target(world, "scaledobject")
    action = pending(dep, 3)
    execution._claim(action.id)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        alive = f"{socket.gethostname()}:{proc.pid}:{workers._start_ticks(proc.pid)}"
        ScaleAction.objects.filter(id=action.id).update(claimed_by=alive)

        assert scale_action_execute(action_id=action.id) is None
        assert actions_redispatch_stuck(dispatch=False) == []
    finally:
        proc.kill()
        proc.wait()
    assert world.patches() == []


@pytest.mark.parametrize("claimed_by", ["other-host:12:345", "", "garbage"])
def test_a_claim_from_another_host_waits_for_the_timeout(world, claimed_by):
    dep = make_target(world, "scaledobject")
    action = pending(dep, 3)
    execution._claim(action.id)
    ScaleAction.objects.filter(id=action.id).update(claimed_by=claimed_by)

    assert scale_action_execute(action_id=action.id) is None
    assert actions_redispatch_stuck(dispatch=False) == []


def test_the_reconciler_takes_back_at_once_what_a_dead_process_on_this_host_held(world):
    dep = make_target(world, "scaledobject")
    action = pending(dep, 3)
    execution._claim(action.id)
    ScaleAction.objects.filter(id=action.id).update(claimed_by=gone_process())

    assert actions_redispatch_stuck(dispatch=False) == [action.id]
    assert ScaleAction.objects.get(id=action.id).status == ScaleAction.Status.PENDING


def test_a_claim_taken_over_before_its_write_writes_nothing(world, monkeypatch):
    dep = make_target(world, "scaledobject")
    action = pending(dep, 3)
    original = execution.action_outcome

    def another_worker_takes_it_over(*args, **kwargs):
        ScaleAction.objects.filter(id=action.id).update(attempts=F("attempts") + 1, claimed_by="elsewhere:1:1")
        return original(*args, **kwargs)

    monkeypatch.setattr(execution, "action_outcome", another_worker_takes_it_over)

    assert scale_action_execute(action_id=action.id) is None

    assert world.patches() == []
    assert ScaleAction.objects.get(id=action.id).intent == {}


def test_giving_up_on_a_write_that_may_have_landed_says_so(world):
    """The API server applied the PATCH, its answer timed out, and then the cluster stopped answering."""
    world.cluster.request_timeout_seconds = 0.3
    world.cluster.save()
    dep = make_target(world, "hpa")
    world.kube.delay(1.0, path="/apis/autoscaling", method="PATCH", after_applying=True)
    action = pending(dep, 2, ttl_minutes=10)
    with pytest.raises(execution.TransientActionError):
        scale_action_execute(action_id=action.id)

    scale_action_fail(action_id=action.id, error="gave up after 6 tries: the cluster did not answer")

    failed = ScaleAction.objects.get(id=action.id)
    assert failed.status == ScaleAction.Status.FAILED
    assert failed.error == (
        "gave up after 6 tries: the cluster did not answer; a write of min_replicas 2 was sent "
        "and may have landed (the cluster could not be read)"
    )


def test_a_starting_worker_sends_every_pending_action_again(world, django_capture_on_commit_callbacks):
    """Its predecessor's dying connection may have taken their messages from the broker."""
    dep = make_target(world, "scaledobject")
    fresh = pending(dep, 3)
    assert actions_redispatch_stuck(dispatch=False) == []  # the tick waits a minute for a fresh one

    with django_capture_on_commit_callbacks(execute=True):
        recover_lost_actions()

    done = ScaleAction.objects.get(id=fresh.id)
    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert world.so_spec()["spec"]["minReplicaCount"] == 3


def test_an_earlier_write_that_lands_late_is_recorded_not_taken_for_someone_elses(world, cluster_calls):
    """The reconciler gave a slow worker's claim to another; the slow one's PATCH lands just before
    the new claim's, which gets 409: the re-read shows the earlier write, with its true before."""
    dep = make_target(world, "hpa")
    action = pending(dep, 2, ttl_minutes=10)
    cluster_calls.on_write = kill_the_worker  # the slow worker, as far as the audit knows, never wrote
    slow = killed(action.id)
    cluster_calls.on_write = None
    rv = slow.intent["resource_version"]

    def the_slow_write_lands_first():
        cluster_calls.on_write = None
        world.kube.load(
            {
                **world.kube.get("HorizontalPodAutoscaler", "llm", "llama"),
                "metadata": {"name": "llama", "namespace": "llm"},
                "spec": {**world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["spec"], "minReplicas": 2},
            }
        )

    cluster_calls.on_write = the_slow_write_lands_first
    done = rerun_after_the_reconciler(action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED, done.error
    assert (done.before, done.after, done.baseline) == ({"min_replicas": 1}, {"min_replicas": 2}, {"min_replicas": 1})
    assert done.resource_version_before == rv
    assert any(n.startswith("recovered:") for n in done.notes)
