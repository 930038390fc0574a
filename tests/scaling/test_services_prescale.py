"""Pre-scale rules: firing windows, late firings, firing once, restoring the baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from config.errors import ApplicationError
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
            scale_action_request, deployment=dep, replicas=8, reason="launch", actor=Actor(label="a", key="user:1"),
            source="ui", ttl_minutes=60,
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
    rule = prescale_rule_create(deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=6,
                                duration_minutes=60)
    from fleet.models import Autoscaler

    Autoscaler.objects.filter(kind="keda").update(max_replicas=4)  # lowered since the rule was made

    with time_machine.travel(datetime(2025, 6, 2, 9, 1, tzinfo=UTC), tick=False):
        [firing] = tick(run_on_commit).firings

    assert firing.error and "max (4)" in firing.error
    action = ScaleAction.objects.get(id=firing.action_id)
    assert action.status == ScaleAction.Status.REJECTED and action.rule_id == rule.pk
    assert world.patches() == []


def test_a_spring_forward_firing_in_the_gap_fires_at_the_first_valid_instant(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=10)
    prescale_rule_create(deployment=dep, cron="30 2 * * *", timezone_name="America/New_York", min_replicas=3,
                         duration_minutes=60)
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
        prescale_rule_create(deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=2,
                             duration_minutes=60)

    assert exc.value.field == "deployment" and "allow-list" in exc.value.message
