"""Pre-scale rules: firing windows, late firings, firing once, restoring the baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core.errors import ApplicationError
from scaling import windows
from scaling.models import PrescaleRule, ScaleAction
from scaling.services import (
    prescale_rule_create,
    prescale_rule_update,
    prescale_rules_fire_due,
    scaling_tick_run,
)


def tick(run_on_commit):
    return run_on_commit(scaling_tick_run)


def min_count(world):
    return world.so_spec()["spec"]["minReplicaCount"]


@pytest.fixture
def rule_setup(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=10)
    rule = prescale_rule_create(
        deployment=dep, cron="0 9 * * *", timezone_name="Europe/Berlin", min_replicas=6, duration_minutes=120
    )
    return dep, rule


def test_a_firing_raises_the_floor_for_its_window_then_restores_the_baseline(world, run_on_commit, rule_setup):
    _, rule = rule_setup
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)  # 09:00 CEST

    with time_machine.travel(nine_berlin + timedelta(seconds=10), tick=False):
        result = tick(run_on_commit)
    assert min_count(world) == 6
    [firing] = result.firings
    action = ScaleAction.objects.get(id=firing.action_id)
    assert (action.source, action.actor_label, action.rule_id) == ("rule", f"rule:#{rule.pk}", rule.pk)
    assert action.expires_at == nine_berlin + timedelta(hours=2)
    assert action.status == ScaleAction.Status.SUCCEEDED

    with time_machine.travel(nine_berlin + timedelta(hours=1), tick=False):
        assert tick(run_on_commit).action_ids == []
    with time_machine.travel(nine_berlin + timedelta(hours=2, seconds=5), tick=False):
        result = tick(run_on_commit)
    assert len(result.restores) == 1
    assert min_count(world) == 1


def test_a_firing_missed_while_workers_were_down_is_applied_late_while_its_window_is_open(
    world, run_on_commit, rule_setup
):
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)

    with time_machine.travel(nine_berlin + timedelta(minutes=90), tick=False):
        [firing] = tick(run_on_commit).firings

    action = ScaleAction.objects.get(id=firing.action_id)
    assert firing.at == nine_berlin
    assert action.expires_at == nine_berlin + timedelta(hours=2)
    assert "90 min late" in action.reason
    assert min_count(world) == 6


def test_a_firing_whose_window_closed_is_not_applied(world, run_on_commit, rule_setup):
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)

    with time_machine.travel(nine_berlin + timedelta(hours=2, minutes=1), tick=False):
        result = tick(run_on_commit)

    assert result.firings == [] and world.patches() == []


def test_a_firing_whose_window_closed_before_any_tick_is_reported_missed_once(world, run_on_commit, rule_setup):
    _, rule = rule_setup
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    PrescaleRule.objects.filter(id=rule.id).update(created_at=nine_berlin - timedelta(days=1))

    first = tick_at(run_on_commit, nine_berlin + timedelta(hours=2, minutes=1))
    second = tick_at(run_on_commit, nine_berlin + timedelta(hours=2, minutes=2))

    [missed] = first.missed
    assert (missed.rule_id, missed.at, missed.action_id, missed.missed) == (rule.id, nine_berlin, None, True)
    assert second.missed == [] and first.firings == [] and world.patches() == []


def test_a_rule_created_after_its_latest_window_closed_missed_nothing(world, run_on_commit, rule_setup):
    _, rule = rule_setup
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    PrescaleRule.objects.filter(id=rule.id).update(created_at=nine_berlin + timedelta(hours=3))

    result = tick_at(run_on_commit, nine_berlin + timedelta(hours=4))

    assert result.missed == []


def test_a_firing_is_applied_once_however_many_ticks_see_it(world, run_on_commit, rule_setup):
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    with time_machine.travel(nine_berlin + timedelta(minutes=1), tick=False):
        first = tick(run_on_commit)
        second = tick(run_on_commit)

    assert len(first.firings) == 1 and second.firings == []
    assert ScaleAction.objects.filter(source="rule").count() == 1


def test_two_concurrent_ticks_claim_a_firing_once(world, run_on_commit, rule_setup, monkeypatch):
    """Tick B runs entirely while tick A is between reading the rule and claiming its firing."""
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    real_open_window = windows.open_window
    results = []

    def open_window_with_a_rival(*args, **kwargs):
        window = real_open_window(*args, **kwargs)
        if not results:
            results.append("rival")
            results.append(prescale_rules_fire_due())  # tick B, same instant
        return window

    monkeypatch.setattr(windows, "open_window", open_window_with_a_rival)
    with time_machine.travel(nine_berlin + timedelta(minutes=1), tick=False):
        tick_a = run_on_commit(prescale_rules_fire_due)

    tick_b = results[1]
    assert len(tick_b) == 1 and tick_a == []
    assert ScaleAction.objects.filter(source="rule").count() == 1
    assert PrescaleRule.objects.get().last_fired_at == nine_berlin


def test_a_rule_and_a_manual_override_take_the_highest_floor(world, run_on_commit, rule_setup):
    from scaling.services import Actor, scale_action_request

    dep, _ = rule_setup
    nine_berlin = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    with time_machine.travel(nine_berlin - timedelta(minutes=30), tick=False):
        run_on_commit(
            scale_action_request,
            deployment=dep,
            replicas=8,
            reason="launch",
            actor=Actor(label="a", key="user:1"),
            source="ui",
            ttl_minutes=60,
        )
    assert min_count(world) == 8
    with time_machine.travel(nine_berlin + timedelta(seconds=5), tick=False):
        tick(run_on_commit)
    assert min_count(world) == 8
    with time_machine.travel(nine_berlin + timedelta(minutes=31), tick=False):
        tick(run_on_commit)  # the manual override ends: the rule's floor holds
    assert min_count(world) == 6
    with time_machine.travel(nine_berlin + timedelta(hours=2, seconds=1), tick=False):
        tick(run_on_commit)
    assert min_count(world) == 1


def test_a_firing_the_autoscaler_max_cannot_hold_is_refused_and_audited(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=10)
    rule = prescale_rule_create(
        deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=6, duration_minutes=60
    )
    from fleet.models import Autoscaler

    Autoscaler.objects.filter(kind="scaledobject").update(max_replicas=4)  # lowered since the rule was made

    with time_machine.travel(datetime(2025, 6, 2, 9, 1, tzinfo=UTC), tick=False):
        [firing] = tick(run_on_commit).firings

    assert firing.error and "max (4)" in firing.error
    action = ScaleAction.objects.get(id=firing.action_id)
    assert action.status == ScaleAction.Status.REJECTED and action.rule_id == rule.pk
    assert world.patches() == []


def test_a_spring_forward_firing_in_the_gap_fires_at_the_first_valid_instant(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=10)
    prescale_rule_create(
        deployment=dep, cron="30 2 * * *", timezone_name="America/New_York", min_replicas=3, duration_minutes=60
    )
    gap_end = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT: 02:30 did not exist that day

    with time_machine.travel(gap_end - timedelta(seconds=1), tick=False):
        assert tick(run_on_commit).firings == []
    with time_machine.travel(gap_end + timedelta(seconds=1), tick=False):
        [firing] = tick(run_on_commit).firings
    assert firing.at == gap_end


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "+02:00"}, "timezone"),
        ({"min_replicas": 11}, "min_replicas"),
        ({"duration_minutes": 0}, "duration_minutes"),
    ],
)
def test_it_refuses_a_bad_rule_with_the_field_at_fault(rule_setup, changes, field):
    _, rule = rule_setup

    with pytest.raises(ApplicationError) as exc:
        prescale_rule_update(rule=rule, **changes)

    assert exc.value.field == field


def test_it_refuses_a_rule_for_a_namespace_it_may_not_change(world):
    dep = world.deployment(namespace="batch")

    with pytest.raises(ApplicationError) as exc:
        prescale_rule_create(deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=2, duration_minutes=60)

    assert exc.value.field == "deployment" and "allow-list" in exc.value.message


# --------------------------------------------------------------------------- a failed firing is tried again

NINE_UTC = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
KEDA_PATH = "/apis/keda.sh/v1alpha1/namespaces/llm/scaledobjects/llama"


@pytest.fixture
def utc_rule(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=10)
    return prescale_rule_create(
        deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=6, duration_minutes=60
    )


def tick_at(run_on_commit, when):
    with time_machine.travel(when, tick=False):
        return tick(run_on_commit)


def firing_actions():
    return list(ScaleAction.objects.filter(source="rule").order_by("created_at", "id"))


def test_a_failed_firing_is_tried_again_a_minute_later_while_its_window_is_open(world, run_on_commit, utc_rule):
    world.kube.fail(KEDA_PATH, 403, method="PATCH")
    [first] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10)).firings
    assert ScaleAction.objects.get(id=first.action_id).status == ScaleAction.Status.FAILED

    assert tick_at(run_on_commit, NINE_UTC + timedelta(seconds=40)).firings == []  # not hammered every tick
    world.kube.reset_switches()
    [retry] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=75)).firings

    assert (retry.at, retry.attempt) == (NINE_UTC, 2)
    assert min_count(world) == 6
    failed, succeeded = firing_actions()
    assert (failed.status, succeeded.status) == ("failed", "succeeded")
    assert failed.idempotency_key == "firing:2025-06-02T09:00:00+00:00"
    assert succeeded.idempotency_key == "firing:2025-06-02T09:00:00+00:00#try2"
    assert f"try 2 of 5: #{failed.pk} failed: " in succeeded.reason and "forbidden" in succeeded.reason
    assert succeeded.expires_at == NINE_UTC + timedelta(hours=1)


def test_a_firing_that_succeeded_on_a_retry_is_never_applied_again_and_is_restored_once(world, run_on_commit, utc_rule):
    world.kube.fail(KEDA_PATH, 403, method="PATCH", times=1)
    tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10))
    tick_at(run_on_commit, NINE_UTC + timedelta(seconds=75))
    world.kube.clear_requests()

    for minute in (3, 10, 30, 59):
        assert tick_at(run_on_commit, NINE_UTC + timedelta(minutes=minute)).action_ids == []
    assert world.patches() == []
    result = tick_at(run_on_commit, NINE_UTC + timedelta(minutes=60, seconds=5))

    assert len(result.restores) == 1 and min_count(world) == 1
    assert [a.status for a in firing_actions()] == ["failed", "succeeded"]


def test_a_firing_that_keeps_failing_is_given_up_after_five_tries(world, run_on_commit, utc_rule):
    world.kube.fail(KEDA_PATH, 403, method="PATCH")

    for i in range(9):
        tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10 + 61 * i))

    assert [a.status for a in firing_actions()] == ["failed"] * 5
    assert len(world.patches()) == 5
    assert "try 5 of 5" in firing_actions()[-1].reason


def test_a_failed_firing_is_not_tried_again_once_its_window_closed(world, run_on_commit, utc_rule):
    world.kube.fail(KEDA_PATH, 403, method="PATCH")
    tick_at(run_on_commit, NINE_UTC + timedelta(minutes=59, seconds=30))
    world.kube.reset_switches()

    assert tick_at(run_on_commit, NINE_UTC + timedelta(minutes=60, seconds=40)).firings == []
    assert [a.status for a in firing_actions()] == ["failed"]


def test_a_refused_firing_is_not_tried_again(world, run_on_commit, utc_rule):
    from fleet.models import Autoscaler

    Autoscaler.objects.filter(kind="scaledobject").update(max_replicas=4)  # a policy refusal, not a failure
    tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10))

    assert tick_at(run_on_commit, NINE_UTC + timedelta(minutes=5)).firings == []
    assert [a.status for a in firing_actions()] == ["rejected"]


def test_two_ticks_deciding_on_the_same_retry_make_one_try(world, run_on_commit, utc_rule, monkeypatch):
    """Tick B runs entirely while tick A has decided to retry and is about to make the action."""
    from scaling.services import prescale

    world.kube.fail(KEDA_PATH, 403, method="PATCH", times=1)
    tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10))
    real_scale_request = prescale.scale_action_request
    rival = []

    def scale_request_after_a_rival(**kwargs):
        if not rival:
            rival.append("running")
            rival.append(prescale_rules_fire_due(now=kwargs["now"], dispatch=False))  # tick B
        return real_scale_request(**kwargs)

    monkeypatch.setattr(prescale, "scale_action_request", scale_request_after_a_rival)
    with time_machine.travel(NINE_UTC + timedelta(seconds=75), tick=False):
        tick_a = prescale_rules_fire_due(dispatch=False)

    [tick_b_firing] = rival[1]
    assert tick_b_firing.attempt == 2 and tick_a == []
    assert [a.status for a in firing_actions()] == ["failed", "pending"]


# --------------------------------------------------------------------------- a crash mid-firing loses nothing


class WorkerKilled(BaseException):
    """The process dying (SIGKILL, OOM) between two statements: nothing after it runs."""


def test_a_crash_between_claiming_a_firing_and_storing_its_action_loses_nothing(
    world, run_on_commit, utc_rule, monkeypatch
):
    from scaling.services import prescale

    real_scale_request = prescale.scale_action_request

    def killed(**kwargs):
        raise WorkerKilled

    monkeypatch.setattr(prescale, "scale_action_request", killed)
    with time_machine.travel(NINE_UTC + timedelta(seconds=10), tick=False), pytest.raises(WorkerKilled):
        prescale_rules_fire_due(dispatch=False)
    monkeypatch.setattr(prescale, "scale_action_request", real_scale_request)

    utc_rule.refresh_from_db()
    assert utc_rule.last_fired_at is None  # the claim rolled back with the crash
    [firing] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=25)).firings
    assert firing.at == NINE_UTC and not firing.error
    assert [a.status for a in firing_actions()] == ["succeeded"]
    assert min_count(world) == 6
    assert tick_at(run_on_commit, NINE_UTC + timedelta(seconds=40)).firings == []  # and once only


def test_a_firing_that_raises_is_tried_again_and_does_not_stop_the_other_rules(
    world, run_on_commit, utc_rule, monkeypatch
):
    from scaling.services import prescale

    other = world.deployment("mistral")
    world.keda(other, min_replicas=1, max_replicas=10)
    prescale_rule_create(deployment=other, cron="0 9 * * *", timezone_name="UTC", min_replicas=3, duration_minutes=60)
    real_scale_request = prescale.scale_action_request

    def broken_for_llama(**kwargs):
        if kwargs["deployment"].name == "llama":
            raise RuntimeError("a bug")
        return real_scale_request(**kwargs)

    monkeypatch.setattr(prescale, "scale_action_request", broken_for_llama)
    [mistral] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10)).firings
    monkeypatch.setattr(prescale, "scale_action_request", real_scale_request)
    [llama] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=25)).firings

    assert mistral.rule_id != utc_rule.pk and llama.rule_id == utc_rule.pk
    assert [a.status for a in firing_actions()] == ["succeeded", "succeeded"]


def test_a_refused_firing_stays_claimed_with_its_rejected_action(world, run_on_commit, utc_rule):
    from fleet.models import Autoscaler

    Autoscaler.objects.filter(kind="scaledobject").update(max_replicas=4)
    [firing] = tick_at(run_on_commit, NINE_UTC + timedelta(seconds=10)).firings

    utc_rule.refresh_from_db()
    assert utc_rule.last_fired_at == NINE_UTC
    assert firing.error and ScaleAction.objects.get(id=firing.action_id).status == "rejected"
