"""The periodic pass: due pre-scale firings, ended windows and expired overrides, stuck actions.

Beat runs it every 15 s (`scaling.tasks.scaling_tick`, dispatching through the broker);
`manage.py scaling_tick` runs it once and carries out the actions it started in its own process.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from scaling.models import ScaleAction
from scaling.services import workers
from scaling.services.actions import scale_action_dispatch
from scaling.services.execution import (
    STUCK_RUNNING_SECONDS,
    TargetBusy,
    TransientActionError,
    scale_action_execute,
    scale_action_fail,
)
from scaling.services.overrides import overrides_expire_due
from scaling.services.prescale import Firing, prescale_firings_missed, prescale_rules_fire_due

S = ScaleAction.Status
STUCK_PENDING_SECONDS = 60


@dataclass
class TickResult:
    firings: list[Firing] = field(default_factory=list)
    missed: list[Firing] = field(default_factory=list)
    restores: list[int] = field(default_factory=list)
    redispatched: list[int] = field(default_factory=list)

    @property
    def action_ids(self) -> list[int]:
        fired = [f.action_id for f in self.firings if f.action_id is not None and not f.error]
        return [*fired, *self.restores, *self.redispatched]


def actions_redispatch_stuck(
    *, now: datetime | None = None, dispatch: bool = True, pending_for_seconds: float = STUCK_PENDING_SECONDS
) -> list[int]:
    """Pending actions nobody picked up for a minute (a lost message, a broker restart) go out again;
    running ones whose worker died go back to pending first and out again at once. A worker is known
    dead when its claim is older than STUCK_RUNNING_SECONDS, or, on this host, as soon as its process
    is gone (`workers.process_is_gone`): so a restarted worker, which runs this at start, recovers the
    actions its killed predecessor held. Writes are absolute and claimed, and a re-run reads the
    object to learn what an earlier try wrote (the write protocol, `execution.py`): a duplicate
    message is harmless. A starting worker passes `pending_for_seconds=0`: a message its predecessor's
    dying connection took from the broker is lost, and nothing tells which one."""
    now = now or timezone.now()
    ids: list[int] = []
    running = ScaleAction.objects.filter(status=S.RUNNING).filter(
        Q(started_at__lt=now - timedelta(seconds=STUCK_RUNNING_SECONDS))
        | Q(started_at__isnull=True)
        | Q(claimed_by__startswith=f"{socket.gethostname()}:")
    )
    rows = running.values_list("id", "claimed_by", "started_at", "attempts")
    for action_id, claimed_by, started_at, attempts in rows:
        timed_out = started_at is None or started_at < now - timedelta(seconds=STUCK_RUNNING_SECONDS)
        if not timed_out and not workers.process_is_gone(claimed_by):
            continue
        # Compare-and-set on the claim: a worker that claimed it again meanwhile keeps it.
        if (
            ScaleAction.objects.filter(id=action_id, status=S.RUNNING, attempts=attempts).update(
                status=S.PENDING, error="worker lost: trying again", dispatched_at=now
            )
            != 1
        ):
            continue
        ids.append(action_id)
        if dispatch:
            scale_action_dispatch(action_id)
    cutoff = now - timedelta(seconds=pending_for_seconds)
    stuck = ScaleAction.objects.filter(status=S.PENDING, created_at__lt=cutoff).exclude(dispatched_at__gte=cutoff)
    for action_id, dispatched_at in stuck.values_list("id", "dispatched_at"):
        # Compare-and-set: two reconcilers re-send it once.
        if (
            ScaleAction.objects.filter(id=action_id, status=S.PENDING, dispatched_at=dispatched_at).update(
                dispatched_at=now
            )
            != 1
        ):
            continue
        ids.append(action_id)
        if dispatch:
            scale_action_dispatch(action_id)
    return ids


def scaling_tick_run(*, now: datetime | None = None, dispatch: bool = True) -> TickResult:
    """One pass of every periodic scaling job. With `dispatch=False` nothing is enqueued: the caller
    runs `result.action_ids` itself (see `scale_action_run_inline`)."""
    now = now or timezone.now()
    result = TickResult()
    result.redispatched = actions_redispatch_stuck(now=now, dispatch=dispatch)
    result.firings = prescale_rules_fire_due(now=now, dispatch=dispatch)
    result.missed = prescale_firings_missed(now=now)
    result.restores = overrides_expire_due(now=now, dispatch=dispatch)
    return result


def scale_action_run_inline(
    *,
    action_id: int,
    retries: int = 3,
    wait_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ScaleAction:
    """Carry out an action in this process and return it finished.

    Transient errors are retried with backoff, then the action fails. When a worker claimed it
    first, or holds another action on the same object, wait for it (up to `wait_seconds`)."""
    deadline = time.monotonic() + wait_seconds
    attempt = 0
    while attempt <= retries:
        try:
            done = scale_action_execute(action_id=action_id, sleep=sleep)
        except TargetBusy:
            if time.monotonic() >= deadline:
                return ScaleAction.objects.get(id=action_id)  # still pending: the reconciler re-sends it
            sleep(0.2)
            continue
        except TransientActionError as exc:
            if attempt >= retries:
                scale_action_fail(action_id=action_id, error=f"gave up after {retries + 1} tries: {exc}")
                return ScaleAction.objects.get(id=action_id)
            sleep(min(2**attempt, 10))
            attempt += 1
            continue
        if done is not None:
            return done
        break
    while True:
        action = ScaleAction.objects.get(id=action_id)
        if action.is_terminal or time.monotonic() >= deadline:
            return action
        sleep(0.2)
