"""`manage.py scaling_tick`: one pass, actions carried out in-process, one line each, exit code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from scaling.models import ScaleAction
from scaling.services import Actor, prescale_rule_create, scale_action_request
from scaling.tasks import scaling_tick

NINE = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def run(**kw) -> str:
    out = StringIO()
    call_command("scaling_tick", stdout=out, **kw)
    return out.getvalue()


def test_it_fires_due_rules_and_waits_for_their_actions(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    rule = prescale_rule_create(
        deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=5, duration_minutes=60
    )

    with time_machine.travel(NINE + timedelta(seconds=3), tick=False):
        out = run()

    action = ScaleAction.objects.get()
    assert action.status == "succeeded"
    assert out.strip() == f"#{action.id} succeeded llm/llama (scaledobject) min_replicas 1 -> 5 by rule:#{rule.id}"
    assert world.so_spec()["spec"]["minReplicaCount"] == 5


def test_it_says_when_nothing_is_due(world):
    assert run().strip() == "nothing due"


def test_it_exits_non_zero_with_one_line_when_an_action_fails(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    prescale_rule_create(deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=5, duration_minutes=60)
    world.kube.fail("/apis/keda.sh", 403, method="PATCH")

    with time_machine.travel(NINE + timedelta(seconds=3), tick=False), pytest.raises(CommandError) as exc:
        run()

    assert "\n" not in str(exc.value) and "1 of 1 actions did not succeed" in str(exc.value)
    assert ScaleAction.objects.get().status == "failed"


def test_it_restores_expired_overrides_and_resends_stuck_actions(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    with time_machine.travel(NINE, tick=False):
        stuck = scale_action_request(
            deployment=dep, replicas=3, reason="r", actor=Actor(label="a", key="user:1"), source="api", ttl_minutes=60
        )  # its message was lost
    with time_machine.travel(NINE + timedelta(minutes=2), tick=False):
        out = run()
    stuck.refresh_from_db()
    assert stuck.status == "succeeded" and f"#{stuck.id} succeeded" in out
    with time_machine.travel(NINE + timedelta(minutes=61), tick=False):
        out = run()
    assert "by expiry" in out and world.so_spec()["spec"]["minReplicaCount"] == 1


def test_the_beat_task_runs_the_same_pass(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, min_replicas=1)
    prescale_rule_create(deployment=dep, cron="0 9 * * *", timezone_name="UTC", min_replicas=5, duration_minutes=60)

    with time_machine.travel(NINE + timedelta(seconds=3), tick=False):
        summary = run_on_commit(scaling_tick.delay).result

    assert summary.startswith("1 firings")
    assert world.so_spec()["spec"]["minReplicaCount"] == 5


def test_the_beat_schedule_runs_the_tick_every_15_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["scaling-tick"]
    assert entry["task"] == "scaling.tasks.scaling_tick" and entry["schedule"] == 15.0
