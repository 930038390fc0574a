"""Celery front doors: the evaluation pass (beat, every minute) and sending one delivery."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from scaling.alerts.delivery import MAX_ATTEMPTS, deliveries_due, delivery_attempt
from scaling.alerts.evaluation import alerts_evaluate


def deliveries_enqueue(ids: list[int]) -> None:
    """Send after commit, so the worker never reads a delivery that is not there yet."""
    for delivery_id in ids:
        transaction.on_commit(lambda d=delivery_id: deliver.delay(d))


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=55)
def alerts_tick() -> int:
    """Evaluate every cluster, then hand each new or due delivery to `deliver`. A failing
    receiver only ever costs its own task, never this pass."""
    result = alerts_evaluate()
    due = set(result.deliveries) | set(deliveries_due(now=timezone.now()))
    deliveries_enqueue(sorted(due))
    return len(result.opened)


@shared_task(bind=True, acks_late=True, max_retries=MAX_ATTEMPTS, ignore_result=True, soft_time_limit=30,
             time_limit=40)  # fmt: skip
def deliver(self, delivery_id: int) -> str:
    """One attempt; a failure the receiver may get over is retried after the recorded backoff.
    The claim inside `delivery_attempt` makes a duplicate message a no-op."""
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.status == "retry":
        raise self.retry(countdown=outcome.retry_in_seconds)
    return outcome.status
