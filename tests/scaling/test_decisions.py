"""What to write for a request: targets, contributions, the override stack, refusals. Pure tables."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwnerKind, replica_owner
from scaling import decisions as d
from scaling.decisions import Override, QuotaHeadroom
from tests.factories import autoscaler_facts

SO, HPA_KIND = ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA
KEDA = autoscaler_facts(SO, "llama", 1, 8)
KEDA_HPA = autoscaler_facts(HPA_KIND, "keda-hpa-llama", 1, 8, owned_by_scaledobject="llama")
HPA = autoscaler_facts(HPA_KIND, "llama", 1, 4)


def test_a_scale_request_writes_the_owner_of_the_replicas():
    owner = replica_owner("llama", [KEDA_HPA, KEDA])
    assert d.scale_target("llama", owner) is owner


@pytest.mark.parametrize("autoscalers", [[KEDA, HPA], [HPA, autoscaler_facts(HPA_KIND, "llama-2", 1, 3)]])
def test_two_owners_are_a_conflict(autoscalers):
    with pytest.raises(ApplicationError) as exc:
        d.scale_target("llama", replica_owner("llama", autoscalers))
    assert exc.value.status == 409
    assert "fight over its replicas" in exc.value.message
    assert {a["kind"] for a in exc.value.extra["autoscalers"]} <= {"keda", "hpa"}  # the API's names


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
    args = dict(
        namespace="llm",
        namespace_writable=True,
        target=replica_owner("llama", [KEDA]),
        replicas=4,
        raise_max=False,
        current_replicas=2,
        gpu_resource="nvidia.com/gpu",
        gpu_per_replica=2,
        quotas=[],
    )
    return d.check_policy(**(args | kw))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"namespace_writable": False}, "allow-list"),
        ({"replicas": 9}, "above the autoscaler's max (8)"),
        ({"quotas": [QuotaHeadroom("q", "requests.nvidia.com/gpu", 8, 6)]}, "need 4 nvidia.com/gpu"),
        ({"target": replica_owner("llama", [HPA]), "replicas": 0, "mode": "pin"}, "cannot be pinned to 0"),
        # The API server refuses minReplicas 0 on an HPA (422): refused before anything is written.
        ({"target": replica_owner("llama", [HPA]), "replicas": 0}, "cannot be given a floor of 0"),
        ({"target": replica_owner("llama", [HPA]), "replicas": 0, "raise_max": True}, "cannot be given a floor of 0"),
    ],
)
def test_policy_refusals_are_409(kw, message):
    with pytest.raises(ApplicationError) as exc:
        policy(**kw)
    assert exc.value.status == 409 and message in exc.value.message


@pytest.mark.parametrize(
    ("headroom", "replicas", "refused", "left"),
    [
        # hard 16, used 6: a request for 2 more replicas of 2 GPUs needs 4.
        (QuotaHeadroom("q", "requests.nvidia.com/gpu", 16, 6), 4, False, None),
        (QuotaHeadroom("q", "requests.nvidia.com/gpu", 16, 6, in_flight=6, in_flight_actions=2), 4, False, None),
        (
            QuotaHeadroom("q", "requests.nvidia.com/gpu", 16, 6, in_flight=7, in_flight_actions=2),
            4,
            True,
            "has 3 left (6 of 16 used, 7 promised to 2 actions in flight)",
        ),
        (
            QuotaHeadroom("q", "requests.nvidia.com/gpu", 16, 12, in_flight=4, in_flight_actions=1),
            3,
            True,
            "has 0 left (12 of 16 used, 4 promised to 1 action in flight)",
        ),
        # A scale-down needs nothing, however full the quota.
        (QuotaHeadroom("q", "requests.nvidia.com/gpu", 16, 16, in_flight=8, in_flight_actions=1), 1, False, None),
    ],
)
def test_the_quota_check_counts_what_actions_in_flight_promised(headroom, replicas, refused, left):
    if not refused:
        assert policy(replicas=replicas, quotas=[headroom]) == []
        return
    with pytest.raises(ApplicationError) as exc:
        policy(replicas=replicas, quotas=[headroom])
    assert exc.value.status == 409 and left in exc.value.message
    assert exc.value.extra["in_flight"] == headroom.in_flight


@pytest.mark.parametrize(
    ("actions", "gpus"),
    [
        ([], 0),
        ([d.ActionInFlight(1, 4, 2, 2)], 4),
        # One deployment's actions overlap: its highest ask counts, once.
        ([d.ActionInFlight(1, 4, 2, 2), d.ActionInFlight(1, 6, 2, 2), d.ActionInFlight(1, 3, 2, 2)], 8),
        # Different deployments add up.
        ([d.ActionInFlight(1, 4, 2, 2), d.ActionInFlight(2, 3, 1, 4)], 12),
        # A scale-down promises nothing.
        ([d.ActionInFlight(1, 1, 2, 2)], 0),
    ],
)
def test_gpus_promised_by_actions_in_flight(actions, gpus):
    assert d.gpus_promised(actions) == gpus


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
    args = dict(
        target_kind="scaledobject",
        current={"min_replicas": 2, "max_replicas": 8, "paused_replicas": None},
        last_written={},
        last_baseline={},
        active=[],
    )
    return d.resolve(**(args | kw))


def test_a_first_override_remembers_the_value_it_replaces_as_baseline():
    r = resolve(wants={"min_replicas": ("floor", 6)}, time_boxed=True)
    assert (r.before, r.after, r.baseline, r.write) == (
        {"min_replicas": 2},
        {"min_replicas": 6},
        {"min_replicas": 2},
        {"min_replicas": 6},
    )


def test_overlapping_floors_take_the_highest():
    r = resolve(
        current={"min_replicas": 6, "max_replicas": 8},
        last_written={"min_replicas": 6},
        last_baseline={"min_replicas": 2},
        active=[floor(1, 6)],
        wants={"min_replicas": ("floor", 4)},
        time_boxed=True,
    )
    assert r.after == {"min_replicas": 6} and r.write == {} and r.baseline == {"min_replicas": 2}
    assert any("higher floor" in n for n in r.notes)


def test_an_ending_override_falls_back_to_the_next_highest_then_the_baseline():
    mid = resolve(
        current={"min_replicas": 6, "max_replicas": 8},
        last_written={"min_replicas": 6},
        last_baseline={"min_replicas": 2},
        active=[floor(2, 4)],
        restoring=("min_replicas",),
    )
    assert mid.write == {"min_replicas": 4}
    last = resolve(
        current={"min_replicas": 4, "max_replicas": 8},
        last_written={"min_replicas": 4},
        last_baseline={"min_replicas": 2},
        active=[],
        restoring=("min_replicas",),
    )
    assert last.write == {"min_replicas": 2}


def test_a_restore_leaves_a_value_changed_by_someone_else():
    r = resolve(
        current={"min_replicas": 5, "max_replicas": 8},
        last_written={"min_replicas": 6},
        last_baseline={"min_replicas": 2},
        restoring=("min_replicas",),
    )
    assert r.left_as_is and r.write == {} and r.after == {"min_replicas": 5}
    assert r.notes[0].startswith("left as is: changed by someone else since (min_replicas is 5, we wrote 6)")


def test_an_outside_change_becomes_the_baseline_of_the_next_request():
    r = resolve(
        current={"min_replicas": 3, "max_replicas": 8},
        last_written={"min_replicas": 6},
        last_baseline={"min_replicas": 2},
        wants={"min_replicas": ("floor", 5)},
        time_boxed=True,
    )
    assert r.baseline == {"min_replicas": 3} and r.after == {"min_replicas": 5}


def test_a_permanent_request_sets_the_baseline_but_active_floors_still_hold():
    r = resolve(
        current={"min_replicas": 6, "max_replicas": 8},
        last_written={"min_replicas": 6},
        last_baseline={"min_replicas": 2},
        active=[floor(1, 6)],
        wants={"min_replicas": ("floor", 3)},
    )
    assert r.baseline == {"min_replicas": 3} and r.after == {"min_replicas": 6}


def test_the_newest_pin_wins_and_a_permanent_pin_supersedes_older_ones():
    timed = resolve(active=[pin(1, 3)], wants={"paused_replicas": ("pin", 5)}, time_boxed=True)
    assert timed.after == {"paused_replicas": 5}
    permanent = resolve(active=[pin(1, 3), floor(2, 4)], wants={"paused_replicas": ("pin", 1)})
    assert permanent.after == {"paused_replicas": 1} and permanent.superseded == (1,)


def test_a_pin_ending_removes_the_annotation():
    r = resolve(
        current={"paused_replicas": 3},
        last_written={"paused_replicas": 3},
        last_baseline={"paused_replicas": None},
        restoring=("paused_replicas",),
    )
    assert r.write == {"paused_replicas": None}


@pytest.mark.parametrize(
    ("target_kind", "current", "asked", "after", "write"),
    [
        # A ceiling already above the request stays where it is: raise_max only raises.
        (
            "scaledobject",
            {"min_replicas": 1, "max_replicas": 8, "paused_replicas": None},
            3,
            {"min_replicas": 3, "max_replicas": 8},
            {"min_replicas": 3},
        ),
        (
            "scaledobject",
            {"min_replicas": 1, "max_replicas": 8, "paused_replicas": None},
            0,
            {"min_replicas": 0, "max_replicas": 8},
            {"min_replicas": 0},
        ),
        ("hpa", {"min_replicas": 2, "max_replicas": 6}, 3, {"min_replicas": 3, "max_replicas": 6}, {"min_replicas": 3}),
        ("hpa", {"min_replicas": 2, "max_replicas": 6}, 6, {"min_replicas": 6, "max_replicas": 6}, {"min_replicas": 6}),
        # Above the ceiling it raises it to the request.
        (
            "hpa",
            {"min_replicas": 2, "max_replicas": 6},
            7,
            {"min_replicas": 7, "max_replicas": 7},
            {"min_replicas": 7, "max_replicas": 7},
        ),
    ],
)
def test_a_permanent_raise_max_never_lowers_the_max(target_kind, current, asked, after, write):
    wants = d.contributions(target_kind, "floor", asked, raise_max=True)
    r = resolve(target_kind=target_kind, current=current, wants=wants)
    assert (r.after, r.write) == (after, write)
    assert r.baseline["max_replicas"] == after["max_replicas"]


def test_min_above_max_is_refused():
    with pytest.raises(ApplicationError) as exc:
        resolve(
            target_kind="hpa",
            current={"min_replicas": 1, "max_replicas": 4},
            wants={"min_replicas": ("floor", 6)},
            time_boxed=True,
        )
    assert exc.value.status == 409


@given(
    baseline=st.integers(0, 20),
    floors=st.lists(st.integers(0, 30), max_size=6),
    asked=st.integers(0, 30),
)
def test_a_time_boxed_floor_always_lands_on_the_highest_of_baseline_and_floors(baseline, floors, asked):
    active = [floor(i, f, "replicas") for i, f in enumerate(floors)]
    current = max([baseline, *floors])
    r = d.resolve(
        target_kind="deployment",
        current={"replicas": current},
        last_written={"replicas": current},
        last_baseline={"replicas": baseline},
        active=active,
        wants={"replicas": ("floor", asked)},
        time_boxed=True,
    )
    assert r.after == {"replicas": max([baseline, asked, *floors])}
    assert r.baseline == {"replicas": baseline}
    # Unwinding every override in any order ends on the baseline.
    stack = [*active, Override(99, {"replicas": ("floor", asked)})]
    value = r.after["replicas"]
    while stack:
        stack.pop(len(stack) // 2)  # an override in the middle ends
        step = d.resolve(
            target_kind="deployment",
            current={"replicas": value},
            last_written={"replicas": value},
            last_baseline={"replicas": baseline},
            active=stack,
            restoring=("replicas",),
        )
        value = step.after["replicas"]
        assert value == max([baseline, *(o.wants["replicas"][1] for o in stack)])
    assert value == baseline


# --------------------------------------------------------------------------- a paused ScaledObject

PAUSED = autoscaler_facts(SO, "llama", 1, 8, paused_replicas=3)


@pytest.mark.parametrize(
    ("kind", "after", "autoscaler", "replicas"),
    [
        # KEDA paused: the deployment stays at the pinned count whatever the floor says.
        ("scaledobject", {"min_replicas": 6}, PAUSED, 3),
        ("scaledobject", {"min_replicas": 6, "max_replicas": 10}, PAUSED, 3),
        ("scaledobject", {"min_replicas": 0}, PAUSED, 3),
        # A new pin replaces the old one; ending the pin lets the floor work again.
        ("scaledobject", {"paused_replicas": 5}, PAUSED, 5),
        ("scaledobject", {"paused_replicas": None}, PAUSED, 2),
        ("scaledobject", {"paused_replicas": 0}, KEDA, 0),
        # Not paused: at least the floor, at most the max.
        ("scaledobject", {"min_replicas": 6}, KEDA, 6),
        ("scaledobject", {"min_replicas": 9}, KEDA, 8),
        ("hpa", {"min_replicas": 3}, HPA, 3),
        ("deployment", {"replicas": 4}, None, 4),
    ],
)
def test_replicas_after_a_write_account_for_a_keda_pin(kind, after, autoscaler, replicas):
    assert d.replicas_after(kind, after, 2, autoscaler) == replicas


@pytest.mark.parametrize(
    ("target", "mode", "after", "says"),
    [
        (replica_owner("llama", [PAUSED]), "floor", {"min_replicas": 6}, True),
        (replica_owner("llama", [PAUSED]), "pin", {"paused_replicas": 6}, False),
        (replica_owner("llama", [KEDA]), "floor", {"min_replicas": 6}, False),
        (replica_owner("llama", [HPA]), "floor", {"min_replicas": 3}, False),
    ],
)
def test_it_says_plainly_when_a_floor_has_no_effect_because_keda_is_paused(target, mode, after, says):
    notes = d.pin_notes(target=target, wants=d.contributions(target.kind, mode, 6, False), after=after)
    assert bool(notes) is says
    if says:
        [note] = notes
        assert note.startswith("no effect while pinned: ScaledObject llama is paused at 3 replicas")
        assert "autoscaling.keda.sh/paused-replicas" in note and "ask with mode pin" in note
        assert "once the pin is removed" in note


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
        ({"cpu": 8}, False, "is not a Kubernetes resource name"),
        ({"requests.nvidia.com/gpu": -1}, False, "must be between 0 and 100,000 devices"),
        ({}, False, "hard must be"),
    ],
)
def test_quota_changes(requested, force, error):
    args = dict(
        current_hard={"requests.nvidia.com/gpu": 16},
        used={"requests.nvidia.com/gpu": 12},
        requested=requested,
        force=force,
    )
    if error is None:
        before, after, _ = d.plan_quota_change(**args)
        assert after == requested and before == {k: 16 for k in requested}
    else:
        with pytest.raises(ApplicationError) as exc:
            d.plan_quota_change(**args)
        assert error in exc.value.message
