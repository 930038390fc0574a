"""ScaleDeck's own event counters, recorded by any app, exposed at /metrics by `ops.metrics`.

Two kinds of numbers, read two ways, so that one scrape of any web pod describes the whole
installation:

- State (how old each cluster's last good sync is, how long the last one took, actions
  waiting, scale actions by outcome and their request-to-applied latency) is read from the
  database at scrape time (`ops.state`). Any process may have written it.
- Events only a process sees, recorded here (a sync failing, a Prometheus query failing, a Celery task
  running, a pre-scale firing) are counters in prometheus-client's multiprocess mode: every
  process (gunicorn workers, Celery pool processes, beat) writes its own file in one folder,
  `PROMETHEUS_MULTIPROC_DIR` (settings point it at SCALEDECK_METRICS_DIR), and a scrape adds
  them up. On one machine (`make demo`) web and worker share that folder; in Kubernetes each
  worker pod serves its own folder on SCALEDECK_WORKER_METRICS_PORT, which the ServiceMonitor
  scrapes too (deploy/base/monitoring).

Record through the small functions below, never through the metric objects: they keep label
values bounded (cluster names, task names, a fixed set of outcomes).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import Counter, Histogram, values

logger = logging.getLogger(__name__)

SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
QUERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)

sync_duration = Histogram(
    "scaledeck_cluster_sync_duration_seconds",
    "Time one sync of a cluster took, seconds.",
    ["cluster"],
    buckets=SYNC_BUCKETS,
)
sync_errors = Counter("scaledeck_cluster_sync_errors", "Syncs of a cluster that failed.", ["cluster"])
prometheus_query_errors = Counter(
    "scaledeck_prometheus_query_errors", "Queries to a cluster's Prometheus that failed or timed out.", ["cluster"]
)
prometheus_query_duration = Histogram(
    "scaledeck_prometheus_query_duration_seconds",
    "Time a batch of queries to a cluster's Prometheus took, seconds.",
    ["cluster"],
    buckets=QUERY_BUCKETS,
)
PRESCALE_OUTCOMES = ("on_time", "late", "missed")
prescale_firings = Counter(
    "scaledeck_prescale_firings",
    "Pre-scale rule firings applied on time (within a minute of their start) or late.",
    ["outcome"],
)
CELERY_STATES = ("succeeded", "failed", "retried")
celery_tasks = Counter("scaledeck_celery_tasks", "Celery task runs by task and how they ended.", ["task", "state"])


def multiprocess_folder() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def multiprocess_mode() -> bool:
    """True when this process writes its counters to the shared folder.

    prometheus-client decides once, when it is first imported, from PROMETHEUS_MULTIPROC_DIR;
    settings set it, so only a process that imported the library before loading settings runs
    without it (then it reports its own counters only, and says so in the log)."""
    active = values.ValueClass is not values.MutexValue
    if not active and multiprocess_folder():
        logger.warning("prometheus-client was imported before settings: this process reports only its own counters")
    return active


def sync_observed(*, cluster: str, seconds: float, ok: bool) -> None:
    sync_duration.labels(cluster=cluster).observe(seconds)
    errors = sync_errors.labels(cluster=cluster)
    if not ok:
        errors.inc()
    # A cluster that never fails still shows its error series, at 0, for rate() and alerts.
    prometheus_query_errors.labels(cluster=cluster)


def prometheus_query_observed(*, cluster: str, seconds: float, ok: bool) -> None:
    prometheus_query_duration.labels(cluster=cluster).observe(seconds)
    errors = prometheus_query_errors.labels(cluster=cluster)
    if not ok:
        errors.inc()


# Every process-level metric, for a scrape of one process's own counters (`ops.metrics`).
PROCESS_METRICS = (
    sync_duration,
    sync_errors,
    prometheus_query_errors,
    prometheus_query_duration,
    prescale_firings,
    celery_tasks,
)


# A firing applied more than this after its start is late (the audit's reason says so too).
LATE_AFTER_SECONDS = 60


def prescale_firings_observed(firings, *, now) -> None:
    """Count each firing once, at its first try (`Firing` of scaling.services.prescale)."""
    for firing in firings:
        if firing.attempt != 1:
            continue
        if firing.missed:
            prescale_firings.labels(outcome="missed").inc()
            continue
        late = (now - firing.at).total_seconds() > LATE_AFTER_SECONDS
        prescale_firings.labels(outcome="late" if late else "on_time").inc()


def celery_task_observed(*, task: str, state: str) -> None:
    if state not in CELERY_STATES:
        raise ValueError(f"unknown task state {state!r}")
    celery_tasks.labels(task=task, state=state).inc()


for _outcome in PRESCALE_OUTCOMES:  # every outcome is a series from the start, at 0
    prescale_firings.labels(outcome=_outcome)
