"""What a re-read says became of a recorded write: landed, not landed, or unknown."""

from __future__ import annotations

import pytest

from scaling.write_intent import Intent, Verdict, describe, judge


def intent(write, *, rv="100", after=None, read=None) -> Intent:
    return Intent(claim=1, resource_version=rv, read=read or {}, write=write, before={}, after=after or write)


@pytest.mark.parametrize(
    ("write", "current", "rv_now", "verdict"),
    [
        # The version read is still there: a write on it would have moved it.
        ({"min_replicas": 2}, {"min_replicas": 1, "max_replicas": 4}, "100", Verdict.NOT_LANDED),
        # Even when the values happen to match (someone else set them without a new version: impossible
        # on a real API server, but the version is what decides).
        ({"min_replicas": 2}, {"min_replicas": 2}, "100", Verdict.NOT_LANDED),
        ({"min_replicas": 2}, {"min_replicas": 2, "max_replicas": 4}, "101", Verdict.LANDED),
        ({"min_replicas": 4, "max_replicas": 4}, {"min_replicas": 4, "max_replicas": 4}, "107", Verdict.LANDED),
        # Half of a two-field write is not the write.
        ({"min_replicas": 4, "max_replicas": 4}, {"min_replicas": 4, "max_replicas": 8}, "107", Verdict.UNKNOWN),
        ({"replicas": 5}, {"replicas": 4}, "130", Verdict.UNKNOWN),  # a Deployment's status moved its version
        ({"replicas": 5}, {"replicas": 5}, "130", Verdict.LANDED),
        # Removing KEDA's paused-replicas pin: None is the intended value.
        ({"paused_replicas": None}, {"min_replicas": 1, "paused_replicas": None}, "101", Verdict.LANDED),
        ({"paused_replicas": None}, {"min_replicas": 1, "paused_replicas": 3}, "101", Verdict.UNKNOWN),
    ],
)
def test_it_judges_a_write_from_the_object_as_read_again(write, current, rv_now, verdict):
    assert judge(intent(write), current=current, resource_version=rv_now) is verdict


def test_it_checks_only_the_quota_entries_the_action_asked_for():
    # A quota write sends every GPU entry; the action is about the one it changed.
    write = {"hard": {"requests.nvidia.com/gpu": 24, "requests.nvidia.com/mig-1g.10gb": 7}}
    recorded = intent(write, after={"hard": {"requests.nvidia.com/gpu": 24}})
    landed = {"hard": {"requests.nvidia.com/gpu": 24, "requests.nvidia.com/mig-1g.10gb": 14}}
    assert judge(recorded, current=landed, resource_version="101") is Verdict.LANDED
    other = {"hard": {"requests.nvidia.com/gpu": 16}}
    assert judge(recorded, current=other, resource_version="101") is Verdict.UNKNOWN


def test_it_round_trips_through_the_json_stored_on_the_action():
    recorded = Intent(
        claim=2,
        resource_version="55",
        read={"min_replicas": 1},
        write={"min_replicas": 3},
        before={"min_replicas": 1},
        after={"min_replicas": 3},
        baseline={"min_replicas": 1},
        notes=("a note",),
        superseded=(7,),
    )
    assert Intent.from_json(recorded.as_json()) == recorded


@pytest.mark.parametrize("stored", [{}, {"write": {"replicas": 2}}, {"resource_version": "1"}, {"write": "x"}])
def test_it_reads_no_intent_from_an_action_that_has_none(stored):
    assert Intent.from_json(stored) is None


def test_it_describes_the_write_in_the_audit_words():
    assert describe(intent({"min_replicas": 2, "paused_replicas": None})) == "min_replicas 2, paused_replicas (removed)"
    quota = intent({"hard": {"requests.nvidia.com/gpu": 24}})
    assert describe(quota) == "requests.nvidia.com/gpu 24"
