"""Celery front doors for scaling. Tasks take ids, call a service, and own only the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.db import DatabaseError
from django.utils import timezone

from core import metrics
from scaling import whatif_runs
from scaling.alerts.notifications import action_notify, prescale_notify
from scaling.services import (
    TargetBusy,
    TransientActionError,
    actions_redispatch_stuck,
    scale_action_execute,
    scale_action_fail,
    scaling_tick_run,
)
from scaling.timeline_signals import timeline_signals_all

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


@shared_task(
    bind=True,
    acks_late=True,
    # A worker killed mid-write redelivers the message; the claim makes the second run a no-op
    # unless the reconciler has put the action back to pending.
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def apply_scale_action(self, action_id: int) -> str:
    try:
        action = scale_action_execute(action_id=action_id)
    except TargetBusy:
        # Another action on the same object is being applied: wait for it, briefly. Still pending,
        # so when the retries run out (or there is no broker to retry through) the reconciler
        # sends it again; busy is not a failure.
        if self.request.is_eager or self.request.retries >= MAX_RETRIES:
            return f"action {action_id}: waiting for another action on its object"
        raise self.retry(countdown=1 + self.request.retries)
    except TransientActionError as exc:
        if self.request.retries >= MAX_RETRIES:
            scale_action_fail(action_id=action_id, error=f"gave up after {MAX_RETRIES + 1} tries: {exc}")
            action_notify(action_id=action_id)
            return f"action {action_id}: failed"
        if self.request.is_eager:
            # Eager mode (unit tests, no broker) has nowhere to schedule a retry and propagates
            # celery's Retry exception: try again in place, counting retries the same way.
            return self.apply(args=(action_id,), retries=self.request.retries + 1).result
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 30))
    except SoftTimeLimitExceeded:
        scale_action_fail(action_id=action_id, error="timed out after 60 s; the cluster did not answer")
        action_notify(action_id=action_id)
        return f"action {action_id}: timed out"
    if action is None:
        return f"action {action_id}: claimed elsewhere"
    action_notify(action_id=action_id)  # receivers opted in to scale actions (scaling/alerts)
    return f"action {action_id}: {action.status}"


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)
def scaling_tick() -> str:
    """Beat's entry point, every 15 s: the same pass as `manage.py scaling_tick`, through the broker."""
    result = scaling_tick_run()
    metrics.prescale_firings_observed([*result.firings, *result.missed], now=timezone.now())
    prescale_notify(firings=result.firings)  # receivers opted in to pre-scale firings (scaling/alerts)
    return f"{len(result.firings)} firings, {len(result.restores)} restores, {len(result.redispatched)} re-sent"


@worker_ready.connect
def recover_lost_actions(**_) -> None:
    """A worker that starts runs the reconciler at once: the actions a killed predecessor on this host
    held are taken back and sent again now (their re-run reads the object to learn whether the
    write landed), not at the next tick's timeout, and not after the broker's visibility timeout.
    Every pending action is sent again too: a Redis BRPOP still open in a worker being killed can take
    a message with it. Duplicates are harmless (the claim)."""
    try:
        recovered = actions_redispatch_stuck(pending_for_seconds=0)
    except DatabaseError:
        logger.exception("could not look for actions lost by a previous worker; the next tick will")
        return
    if recovered:
        logger.warning("sent again %s action(s) a lost worker held: %s", len(recovered), recovered)


@shared_task(
    ignore_result=True,
    acks_late=False,
    soft_time_limit=whatif_runs.SOFT_TIME_LIMIT_SECONDS,
    time_limit=whatif_runs.TIME_LIMIT_SECONDS,
)
def whatif_run(run_id: int) -> str:
    """One what-if simulation (scaling/whatif_runs.py). Not acked late and never retried: a run
    that killed its worker must not kill the next one; its user just starts another."""
    try:
        run = whatif_runs.whatif_run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        limit = whatif_runs.SOFT_TIME_LIMIT_SECONDS
        whatif_runs.whatif_run_fail(run_id=run_id, error=f"took longer than {limit} s: try fewer hours or policies")
        return f"what-if {run_id}: timed out"
    except Exception:
        whatif_runs.whatif_run_fail(run_id=run_id, error="the simulation failed; the worker log has the details")
        raise
    return f"what-if {run_id}: {run.status if run else 'claimed elsewhere'}"


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=55)
def timeline_signals_tick() -> dict:
    """First tokens served and queue crossings from each cluster's Prometheus (scaling/timeline_signals.py)."""
    return timeline_signals_all(now=timezone.now())
