"""Celery signal handlers: task counters, the worker's heartbeat and its metrics endpoint.

Connected when Django loads the `ops` app, which the worker does before it starts consuming.
"""

from __future__ import annotations

import logging

from celery import signals

from core.env import env_int
from core.metrics import celery_task_observed
from ops import heartbeat, logs, metrics

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
# Which argument of a task names what its log lines are about.
TASK_SUBJECTS = {
    "scaling.tasks.apply_scale_action": "action_id",
    "fleet.tasks.sync_cluster": "cluster_id",
}
_bound: dict[str, object] = {}


@signals.task_prerun.connect
def _task_started(sender=None, task_id=None, args=None, kwargs=None, **_kw):
    subject = TASK_SUBJECTS.get(sender.name)
    about = {}
    if subject:
        value = (kwargs or {}).get(subject, (args or [None])[0] if args else None)
        if isinstance(value, int):
            about[subject] = value
    _bound[task_id] = logs.bind(task=sender.name, **about)


@signals.task_postrun.connect
def _task_ended(sender=None, task_id=None, **_kw):
    token = _bound.pop(task_id, None)
    if token is not None:
        logs.unbind(token)


@signals.task_success.connect
def _task_succeeded(sender=None, **_kw):
    celery_task_observed(task=sender.name, state="succeeded")


@signals.task_failure.connect
def _task_failed(sender=None, **_kw):
    celery_task_observed(task=sender.name, state="failed")


@signals.task_retry.connect
def _task_retried(sender=None, **_kw):
    celery_task_observed(task=sender.name, state="retried")


@signals.worker_ready.connect
def _worker_ready(sender=None, **_kw):
    """Heartbeat from the consumer's own timer: it stops when the worker's loop is stuck."""
    heartbeat.touch("worker")
    sender.timer.call_repeatedly(HEARTBEAT_SECONDS, heartbeat.touch, ("worker",))
    port = env_int("SCALEDECK_WORKER_METRICS_PORT", 0)
    if port:
        # The pool processes' counters, for Prometheus to scrape from each worker pod (the web's
        # /metrics cannot see files in another pod).
        from prometheus_client import start_http_server

        start_http_server(port, registry=metrics.registry(with_state=False))
        logger.info("worker metrics on :%s/metrics", port)
