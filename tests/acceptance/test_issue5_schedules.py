"""Issue 5, checked from the outside, continued: pre-scale rules and scaling_tick, time-boxed
overrides, optimistic concurrency, retries and the broker (the world: tests/acceptance/issue5_world.py).

The database is really committed (transactional_db), so scale actions reach the (eager) Celery
task through `transaction.on_commit`, as they do in production.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError
from django.db import connection

from tests.acceptance.issue5_world import (
    HPA_PATH,
    KEDA_PATH,
    MERGE_PATCH,
    NS,
    PAUSED_REPLICAS,
    SCALE_PATH,
    action,
    manage,
    rule,
    tick_at,
)

pytestmark = pytest.mark.django_db(transaction=True)

# --------------------------------------------------------------------------- pre-scale rules and scaling_tick

# A Monday, 09:00:20 UTC: the rule below ("0 9 * * *", 60 min) is due.
DUE = datetime(2026, 3, 2, 9, 0, 20, tzinfo=UTC)

RULE_TARGETS = [
    # (deployment, path written, field in the body, floor, baseline)
    ("llama-8b", KEDA_PATH, ("spec", "minReplicaCount"), 5, 1),
    ("mistral-7b", HPA_PATH, ("spec", "minReplicas"), 5, 2),
    ("qwen-7b", SCALE_PATH, ("spec", "replicas"), 4, 1),
]


@pytest.mark.parametrize(("name", "path", "field", "floor", "baseline"), RULE_TARGETS, ids=[t[0] for t in RULE_TARGETS])
def test_a_prescale_rule_due_now_is_applied_by_scaling_tick_and_restored_after_its_duration(
    setup, name, path, field, floor, baseline
):
    with time_machine.travel(DUE - timedelta(minutes=5), tick=False):
        created = rule(setup, name, "0 9 * * *", floor, 60)
        assert created.status_code == 201, created.json()
        assert created.json()["next_firings"][0]["utc"] == "2026-03-02T09:00:00+00:00"
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    with time_machine.travel(DUE, tick=False):
        out = manage("scaling_tick")
        assert "succeeded" in out, out
        [applied] = setup.writes()
        assert applied.method == "PATCH" and applied.path == path
        assert applied.content_type.split(";")[0] == MERGE_PATCH
        assert applied.body[field[0]] == {field[1]: floor}
        assert "resourceVersion" in applied.body["metadata"]

        setup.kube.clear_requests()
        assert "nothing due" in manage("scaling_tick")  # the same firing is never applied twice
    with time_machine.travel(DUE + timedelta(minutes=30), tick=False):
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    with time_machine.travel(DUE + timedelta(minutes=60, seconds=5), tick=False):
        out = manage("scaling_tick")
        assert "succeeded" in out, out
        [restored] = setup.writes()
        assert restored.path == path and restored.content_type.split(";")[0] == MERGE_PATCH
        assert restored.body[field[0]] == {field[1]: baseline}
        setup.kube.clear_requests()
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    audit = setup.viewer.get("/api/v1/actions/", {"deployment": setup.ids[name]}).json()["results"]
    assert [(a["operation"], a["source"], a["status"]) for a in audit] == [
        ("restore", "expiry", "succeeded"),
        ("scale", "rule", "succeeded"),
    ]


def test_overlapping_windows_take_the_highest_floor_and_step_back_down(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 4, 60).status_code == 201
        assert rule(setup, "llama-8b", "30 9 * * *", 6, 60).status_code == 201

    def floors_written_at(when: datetime) -> list:
        setup.kube.clear_requests()
        tick_at(when)
        return [r.body["spec"]["minReplicaCount"] for r in setup.writes()]

    assert floors_written_at(datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)) == [4]
    assert floors_written_at(datetime(2026, 3, 2, 9, 30, 10, tzinfo=UTC)) == [6]
    assert floors_written_at(datetime(2026, 3, 2, 10, 0, 10, tzinfo=UTC)) == []  # 6 still holds until 10:30
    assert floors_written_at(datetime(2026, 3, 2, 10, 30, 10, tzinfo=UTC)) == [1]
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 1


def test_a_firing_missed_while_workers_were_down_is_applied_late_once_and_not_after_its_window(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "mistral-7b", "0 9 * * *", 5, 60).status_code == 201

    out = tick_at(DUE + timedelta(minutes=40))  # nobody ticked at 09:00

    assert "applied 40 min late" in setup.viewer.get("/api/v1/actions/").json()["results"][0]["reason"], out
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicas": 5}]
    setup.kube.clear_requests()
    assert "nothing due" in tick_at(DUE + timedelta(minutes=45))
    tick_at(DUE + timedelta(minutes=61))
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicas": 2}]

    setup.kube.clear_requests()
    # The next day nobody ticks during the window at all: the firing is simply gone.
    assert "nothing due" in tick_at(DUE + timedelta(days=1, minutes=61))
    assert setup.writes() == []


def test_a_permanent_floor_set_during_a_window_is_what_the_window_ends_on(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    tick_at(DUE)
    setup.kube.clear_requests()

    with time_machine.travel(DUE + timedelta(minutes=10), tick=False):
        response = setup.scale("llama-8b", {"replicas": 3, "reason": "new normal"})
    assert response.status_code == 202
    done = action(setup, response.json()["id"])
    assert done["after"] == {"min_replicas": 5}
    assert "min_replicas is 5, not 3: a higher floor is active" in done["notes"]
    assert setup.writes() == []

    tick_at(DUE + timedelta(minutes=61))
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 3}]


def test_rule_writes_are_refused_to_viewers_and_bad_rules_are_400(setup):
    assert rule(setup, "llama-8b", "0 9 * * *", 4, 60, client=setup.viewer).status_code == 403
    bad_cron = rule(setup, "llama-8b", "0 25 * * *", 4, 60)
    assert bad_cron.status_code == 400 and "cron" in bad_cron.json()
    above_max = rule(setup, "llama-8b", "0 9 * * *", 9, 60)
    assert above_max.status_code == 400 and "above the autoscaler's max (8)" in above_max.json()["min_replicas"][0]
    zero_hpa = rule(setup, "mistral-7b", "0 9 * * *", 0, 60)
    assert zero_hpa.status_code == 400 and "at least 1" in zero_hpa.json()["min_replicas"][0]
    conflict = rule(setup, "phi-3", "0 9 * * *", 2, 60)
    assert conflict.status_code == 400 and "fight over its replicas" in conflict.json()["deployment"][0]
    assert setup.viewer.get("/api/v1/prescale-rules/").json()["count"] == 0
    assert setup.kube.requests == []


def test_three_ticks_at_once_apply_a_firing_once(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    outputs: list[str] = []
    start = threading.Barrier(3)

    def tick():
        try:
            start.wait()
            outputs.append(manage("scaling_tick"))
        finally:
            connection.close()

    with time_machine.travel(DUE, tick=True):
        threads = [threading.Thread(target=tick) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(outputs) == 3 and outputs.count("nothing due\n") == 2, outputs
    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(KEDA_PATH, {"minReplicaCount": 5})]


# --------------------------------------------------------------------------- time-boxed overrides


def test_a_ttl_override_is_restored_when_it_expires(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        response = setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 120})
        assert response.status_code == 202, response.json()
        assert response.json()["expires_at"].startswith("2026-03-02T14:00:00")
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 6}]
    setup.kube.clear_requests()

    with time_machine.travel(start + timedelta(minutes=119), tick=False):
        assert "nothing due" in manage("scaling_tick")
    with time_machine.travel(start + timedelta(minutes=120, seconds=1), tick=False):
        out = manage("scaling_tick")
    assert "min_replicas 6 -> 1" in out, out
    [restore] = setup.writes()
    assert restore.path == KEDA_PATH and restore.content_type.split(";")[0] == MERGE_PATCH
    assert restore.body["spec"] == {"minReplicaCount": 1}
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 1


def test_a_value_changed_by_someone_else_meanwhile_is_left_and_the_audit_says_so(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    # Someone edits the ScaledObject by hand (kubectl, GitOps) while the override is on.
    edited = setup.kube.get("ScaledObject", NS, "llama-8b")
    edited["spec"]["minReplicaCount"] = 3
    del edited["metadata"]["resourceVersion"]
    setup.kube.load(edited)
    setup.kube.clear_requests()

    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        out = manage("scaling_tick")

    assert setup.writes() == []
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 3
    [restore] = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert restore["status"] == "succeeded" and restore["fields"] == []
    assert restore["notes"][-1] == "left as is: changed by someone else since (min_replicas is 3, we wrote 6)"
    assert "left as is" in out


def test_a_restore_that_failed_is_tried_again_later_until_it_succeeds(setup):
    # Found by this suite: a restore that failed (API down or refusing at the expiry) was never
    # tried again, so the "for 1h" floor stayed up for good.
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    with pytest.raises(CommandError, match="1 of 1 actions did not succeed"):
        tick_at(start + timedelta(minutes=61))
    assert "nothing due" in tick_at(start + timedelta(minutes=62))  # not hammered every tick
    setup.kube.reset_switches()
    setup.kube.clear_requests()
    tick_at(start + timedelta(minutes=67))

    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 1}]
    restores = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert [r["status"] for r in restores] == ["succeeded", "failed"]
    assert "try 2 of 5" in restores[0]["reason"]


def test_a_restore_that_keeps_failing_is_given_up_after_five_tries(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    for i in range(8):
        with contextlib.suppress(CommandError):  # each failed try exits non-zero
            tick_at(start + timedelta(minutes=61 + 6 * i))

    assert len(setup.patches_to(KEDA_PATH)) == 1 + 5
    restores = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert [r["status"] for r in restores] == ["failed"] * 5
    assert "forbidden" in restores[0]["error"]


# --------------------------------------------------------------------------- optimistic concurrency


def test_a_409_conflict_is_reread_and_retried(setup):
    setup.kube.fail(KEDA_PATH, 409, method="PATCH", times=1)

    response = setup.scale("llama-8b", {"replicas": 5, "reason": "r"})

    assert response.status_code == 202
    calls = [(r.method, r.path) for r in setup.kube.requests]
    assert calls == [("GET", KEDA_PATH), ("PATCH", KEDA_PATH), ("GET", KEDA_PATH), ("PATCH", KEDA_PATH)]
    first, second = setup.patches_to(KEDA_PATH)
    assert first.body == second.body
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 5
    done = action(setup, response.json()["id"])
    assert done["status"] == "succeeded" and done["after"] == {"min_replicas": 5}


def test_a_conflict_that_keeps_coming_fails_the_action_with_a_clear_error(setup):
    setup.kube.fail(KEDA_PATH, 409, method="PATCH")

    response = setup.scale("llama-8b", {"replicas": 5, "reason": "r"})

    assert response.status_code == 202
    assert len(setup.patches_to(KEDA_PATH)) == 3
    done = action(setup, response.json()["id"])
    assert done["status"] == "failed" and "409 Conflict 3 times" in done["error"]
    assert done["response"]["code"] == 409


# --------------------------------------------------------------------------- retries and the broker


def test_an_idempotency_key_makes_a_retried_request_return_the_first_action(setup):
    first = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"}, HTTP_IDEMPOTENCY_KEY="chat-4711")
    again = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"}, HTTP_IDEMPOTENCY_KEY="chat-4711")

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert len(setup.writes()) == 1


def test_a_broker_outage_still_answers_202_and_the_reconciler_applies_it_later(setup):
    # Found by this suite: the enqueue failed inside on_commit and the API answered 500 for an
    # action it had already stored, inviting a retry that would create a second one.
    from config.celery import app
    from tests.conftest import _use_broker

    old_broker = app.conf.broker_url
    app.conf.task_always_eager = False
    _use_broker(app, "redis://127.0.0.1:9/0")  # nothing listens there
    try:
        start = datetime.now(UTC)
        with time_machine.travel(start, tick=False):
            response = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"})
    finally:
        _use_broker(app, old_broker)
        app.conf.task_always_eager = True

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert setup.writes() == []

    out = tick_at(start + timedelta(seconds=61))  # the reconciler's pass, run by hand

    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(SCALE_PATH, {"replicas": 2})]
    assert action(setup, response.json()["id"])["status"] == "succeeded", out


# --------------------------------------------------------------------------- found in review (issue 5 follow-up)


def test_a_failed_firing_is_tried_again_by_a_later_tick_while_its_window_is_open(setup):
    # Found in review: a failed firing was never tried again (its key returned the failed action).
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    with pytest.raises(CommandError, match="1 of 1 actions did not succeed"):
        tick_at(DUE)
    assert "nothing due" in tick_at(DUE + timedelta(seconds=30))  # not hammered every tick
    setup.kube.reset_switches()
    setup.kube.clear_requests()
    out = tick_at(DUE + timedelta(seconds=65))

    assert "succeeded" in out, out
    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(KEDA_PATH, {"minReplicaCount": 5})]
    firings = setup.viewer.get("/api/v1/actions/", {"source": "rule"}).json()["results"]
    assert [f["status"] for f in firings] == ["succeeded", "failed"]
    assert "try 2 of 5" in firings[0]["reason"] and "forbidden" in firings[0]["reason"]
    setup.kube.clear_requests()
    assert "nothing due" in tick_at(DUE + timedelta(minutes=5))  # applied once
    assert setup.writes() == []


def test_a_dry_run_floor_on_a_pinned_scaledobject_costs_what_the_pin_runs_and_says_so(setup):
    # Found in review: the preview priced the floor as if KEDA would act on it while paused.
    assert setup.scale("llama-8b", {"replicas": 2, "reason": "freeze", "mode": "pin"}).status_code == 202
    setup.kube.clear_requests()

    response = setup.scale("llama-8b", {"replicas": 6, "reason": "what if", "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["after"] == {"min_replicas": 6}
    assert body["replicas"] == {"before": 2, "after": 2}
    assert body["cost_per_hour_usd"] == {"before": "13.76", "after": "13.76"}
    assert body["pinned"] == {"replicas": 2, "replicas_when_unpinned": 6, "cost_per_hour_usd_when_unpinned": "41.28"}
    [note] = [n for n in body["notes"] if n.startswith("no effect while pinned")]
    assert PAUSED_REPLICAS in note and "mode pin" in note
    assert setup.writes() == []


def test_a_request_counts_gpus_promised_to_actions_not_yet_applied(setup):
    # Found in review: two requests in flight could together pass the namespace quota.
    from config.celery import app
    from tests.conftest import _use_broker

    old_broker = app.conf.broker_url
    app.conf.task_always_eager = False
    _use_broker(app, "redis://127.0.0.1:9/0")  # no worker picks anything up: the first stays pending
    try:
        first = setup.scale("qwen-7b", {"replicas": 5, "reason": "r"})  # +4 of the 6 left
        second = setup.scale("mistral-7b", {"replicas": 5, "reason": "r"})  # +3: only 2 left
    finally:
        _use_broker(app, old_broker)
        app.conf.task_always_eager = True

    assert first.status_code == 202 and first.json()["status"] == "pending"
    assert second.status_code == 409
    assert second.json()["detail"] == (
        "3 more replicas need 3 nvidia.com/gpu but quota gpu-quota has 2 left "
        "(6 of 12 used, 4 promised to 1 action in flight)"
    )
    assert setup.writes() == []
