"""What to write for a request: targets, contributions, the override stack, refusals. Pure tables."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import ApplicationError
from scaling import decisions as d
from scaling.decisions import AutoscalerInfo, Override, QuotaHeadroom

KEDA = AutoscalerInfo("keda", "llama", 1, 8)
KEDA_HPA = AutoscalerInfo("hpa", "keda-hpa-llama", 1, 8, owned_by_scaledobject="llama")
HPA = AutoscalerInfo("hpa", "llama", 1, 4)


@pytest.mark.parametrize(
    ("autoscalers", "kind", "name"),
    [
        ([], "deployment", "llama"),
        ([KEDA], "scaledobject", "llama"),
        ([KEDA, KEDA_HPA], "scaledobject", "llama"),
        ([KEDA_HPA, KEDA], "scaledobject", "llama"),
        ([HPA], "hpa", "llama"),
    ],
)
def test_it_picks_the_object_that_owns_the_replicas(autoscalers, kind, name):
    target = d.choose_target("llama", autoscalers)
    assert (target.kind, target.name) == (kind, name)


@pytest.mark.parametrize("autoscalers", [[KEDA, HPA], [HPA, AutoscalerInfo("hpa", "llama-2", 1, 3)]])
def test_two_owners_are_a_conflict(autoscalers):
    with pytest.raises(ApplicationError) as exc:
        d.choose_target("llama", autoscalers)
    assert exc.value.status == 409


@pytest.mark.parametrize(
    ("kind", "mode", "raise_max", "expected"),
    [
        ("deployment", "floor", False, {"replicas": ("floor", 5)}),
        ("deployment", "pin", False, {"replicas": ("pin", 5)}),
        ("scaledobject", "floor", False, {"min_replicas": ("floor", 5)}),
        ("scaledobject", "floor", True, {"min_replicas": ("floor", 5), "max_replicas": ("floor", 5)}),
        ("scaledobject", "pin", False, {"paused_replicas": ("pin", 5)}),
        ("hpa", "floor", False, {"min_replicas": ("floor", 5)}),
        ("hpa", "pin", False, {"min_replicas": ("pin", 5), "max_replicas": ("pin", 5)}),
        ("hpa", "pin", True, {"min_replicas": ("pin", 5), "max_replicas": ("pin", 5)}),
    ],
)
def test_what_each_request_wants_of_each_field(kind, mode, raise_max, expected):
    assert d.contributions(kind, mode, 5, raise_max) == expected


@pytest.mark.parametrize(
    ("kwargs", "field", "status"),
    [
        ({"replicas": -1}, "replicas", 400),
        ({"replicas": True}, "replicas", 400),
        ({"replicas": 2.0}, "replicas", 400),
        ({"replicas": 10_001}, "replicas", 400),
        ({"mode": "exact"}, "mode", 400),
        ({"reason": " "}, "reason", 400),
        ({"ttl_minutes": 0}, "ttl_minutes", 400),
        ({"ttl_minutes": 8 * 24 * 60}, "ttl_minutes", 400),
    ],
)
def test_it_refuses_bad_input(kwargs, field, status):
    args = {"replicas": 2, "mode": "floor", "reason": "r", "ttl_minutes": None} | kwargs
    with pytest.raises(ApplicationError) as exc:
        d.validate_request(**args)
    assert (exc.value.field, exc.value.status) == (field, status)


def policy(**kw):
    args = dict(namespace="llm", namespace_writable=True, target=d.Target("scaledobject", "llama", KEDA),
                replicas=4, raise_max=False, current_replicas=2, gpu_resource="nvidia.com/gpu", gpu_per_replica=2,
                quotas=[])
    return d.check_policy(**(args | kw))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"namespace_writable": False}, "allow-list"),
        ({"replicas": 9}, "above the autoscaler's max (8)"),
        ({"quotas": [QuotaHeadroom("q", "requests.nvidia.com/gpu", 8, 6)]}, "need 4 nvidia.com/gpu"),
        ({"target": d.Target("hpa", "llama", HPA), "replicas": 0, "mode": "pin"}, "cannot be pinned to 0"),
    ],
)
def test_policy_refusals_are_409(kw, message):
    with pytest.raises(ApplicationError) as exc:
        policy(**kw)
    assert exc.value.status == 409 and message in exc.value.message


def test_raise_max_lets_a_request_above_the_max_through():
    assert policy(replicas=9, raise_max=True) == ["raises max from 8 to 9"]


def test_quotas_for_another_resource_and_scale_downs_are_not_checked():
    assert policy(quotas=[QuotaHeadroom("q", "requests.nvidia.com/mig-1g.10gb", 1, 1)]) == []
    assert policy(replicas=1, quotas=[QuotaHeadroom("q", "requests.nvidia.com/gpu", 1, 1)]) == []
    assert policy(gpu_per_replica=0, quotas=[QuotaHeadroom("q", "requests.nvidia.com/gpu", 1, 1)]) == []


# --------------------------------------------------------------------------- the override stack


def floor(action_id, n, name="min_replicas"):
    return Override(action_id, {name: ("floor", n)})


def pin(action_id, n, name="paused_replicas"):
    return Override(action_id, {name: ("pin", n)})


def resolve(**kw):
    args = dict(target_kind="scaledobject", current={"min_replicas": 2, "max_replicas": 8, "paused_replicas": None},
                last_written={}, last_baseline={}, active=[])
    return d.resolve(**(args | kw))


def test_a_first_override_remembers_the_value_it_replaces_as_baseline():
    r = resolve(wants={"min_replicas": ("floor", 6)}, time_boxed=True)
    assert (r.before, r.after, r.baseline, r.write) == ({"min_replicas": 2}, {"min_replicas": 6},
                                                        {"min_replicas": 2}, {"min_replicas": 6})


def test_overlapping_floors_take_the_highest():
    r = resolve(current={"min_replicas": 6, "max_replicas": 8}, last_written={"min_replicas": 6},
                last_baseline={"min_replicas": 2}, active=[floor(1, 6)], wants={"min_replicas": ("floor", 4)},
                time_boxed=True)
    assert r.after == {"min_replicas": 6} and r.write == {} and r.baseline == {"min_replicas": 2}
    assert any("higher floor" in n for n in r.notes)


def test_an_ending_override_falls_back_to_the_next_highest_then_the_baseline():
    mid = resolve(current={"min_replicas": 6, "max_replicas": 8}, last_written={"min_replicas": 6},
                  last_baseline={"min_replicas": 2}, active=[floor(2, 4)], restoring=("min_replicas",))
    assert mid.write == {"min_replicas": 4}
    last = resolve(current={"min_replicas": 4, "max_replicas": 8}, last_written={"min_replicas": 4},
                   last_baseline={"min_replicas": 2}, active=[], restoring=("min_replicas",))
    assert last.write == {"min_replicas": 2}


def test_a_restore_leaves_a_value_changed_by_someone_else():
    r = resolve(current={"min_replicas": 5, "max_replicas": 8}, last_written={"min_replicas": 6},
                last_baseline={"min_replicas": 2}, restoring=("min_replicas",))
    assert r.left_as_is and r.write == {} and r.after == {"min_replicas": 5}
    assert r.notes[0].startswith("left as is: changed by someone else since (min_replicas is 5, we wrote 6)")


def test_an_outside_change_becomes_the_baseline_of_the_next_request():
    r = resolve(current={"min_replicas": 3, "max_replicas": 8}, last_written={"min_replicas": 6},
                last_baseline={"min_replicas": 2}, wants={"min_replicas": ("floor", 5)}, time_boxed=True)
    assert r.baseline == {"min_replicas": 3} and r.after == {"min_replicas": 5}


def test_a_permanent_request_sets_the_baseline_but_active_floors_still_hold():
    r = resolve(current={"min_replicas": 6, "max_replicas": 8}, last_written={"min_replicas": 6},
                last_baseline={"min_replicas": 2}, active=[floor(1, 6)], wants={"min_replicas": ("floor", 3)})
    assert r.baseline == {"min_replicas": 3} and r.after == {"min_replicas": 6}


def test_the_newest_pin_wins_and_a_permanent_pin_supersedes_older_ones():
    timed = resolve(active=[pin(1, 3)], wants={"paused_replicas": ("pin", 5)}, time_boxed=True)
    assert timed.after == {"paused_replicas": 5}
    permanent = resolve(active=[pin(1, 3), floor(2, 4)], wants={"paused_replicas": ("pin", 1)})
    assert permanent.after == {"paused_replicas": 1} and permanent.superseded == (1,)


def test_a_pin_ending_removes_the_annotation():
    r = resolve(current={"paused_replicas": 3}, last_written={"paused_replicas": 3},
                last_baseline={"paused_replicas": None}, restoring=("paused_replicas",))
    assert r.write == {"paused_replicas": None}


def test_min_above_max_is_refused():
    with pytest.raises(ApplicationError) as exc:
        resolve(target_kind="hpa", current={"min_replicas": 1, "max_replicas": 4},
                wants={"min_replicas": ("floor", 6)}, time_boxed=True)
    assert exc.value.status == 409


@given(
    baseline=st.integers(0, 20),
    floors=st.lists(st.integers(0, 30), max_size=6),
    asked=st.integers(0, 30),
)
def test_a_time_boxed_floor_always_lands_on_the_highest_of_baseline_and_floors(baseline, floors, asked):
    active = [floor(i, f, "replicas") for i, f in enumerate(floors)]
    current = max([baseline, *floors])
    r = d.resolve(target_kind="deployment", current={"replicas": current}, last_written={"replicas": current},
                  last_baseline={"replicas": baseline}, active=active, wants={"replicas": ("floor", asked)},
                  time_boxed=True)
    assert r.after == {"replicas": max([baseline, asked, *floors])}
    assert r.baseline == {"replicas": baseline}
    # Unwinding every override in any order ends on the baseline.
    stack = [*active, Override(99, {"replicas": ("floor", asked)})]
    value = r.after["replicas"]
    while stack:
        stack.pop(len(stack) // 2)  # an override in the middle ends
        step = d.resolve(target_kind="deployment", current={"replicas": value}, last_written={"replicas": value},
                         last_baseline={"replicas": baseline}, active=stack, restoring=("replicas",))
        value = step.after["replicas"]
        assert value == max([baseline, *(o.wants["replicas"][1] for o in stack)])
    assert value == baseline


# --------------------------------------------------------------------------- small rules


@pytest.mark.parametrize(
    ("current", "asked", "asks"),
    [(3, 0, True), (0, 0, False), (3, 6, False), (3, 7, True), (0, 2, False), (0, 3, True), (4, 2, False)],
)
def test_the_browser_confirms_scale_to_zero_and_more_than_doubling(current, asked, asks):
    assert (d.needs_confirmation(current_replicas=current, replicas=asked) is not None) is asks


def test_cost_is_per_replica_times_replicas():
    assert d.cost_per_hour(Decimal("12.345"), 3) == Decimal("37.04")
    assert d.cost_per_hour(None, 3) is None


@pytest.mark.parametrize(
    ("requested", "force", "error"),
    [
        ({"requests.nvidia.com/gpu": 24}, False, None),
        ({"requests.nvidia.com/gpu": 8}, False, "below current usage 12"),
        ({"requests.nvidia.com/gpu": 8}, True, None),
        ({"cpu": 8}, False, "not a GPU quota entry"),
        ({"requests.nvidia.com/gpu": -1}, False, "whole number"),
        ({}, False, "hard must be"),
    ],
)
def test_quota_changes(requested, force, error):
    args = dict(current_hard={"requests.nvidia.com/gpu": 16}, used={"requests.nvidia.com/gpu": 12},
                requested=requested, force=force)
    if error is None:
        before, after, _ = d.plan_quota_change(**args)
        assert after == requested and before == {k: 16 for k in requested}
    else:
        with pytest.raises(ApplicationError) as exc:
            d.plan_quota_change(**args)
        assert error in exc.value.message
