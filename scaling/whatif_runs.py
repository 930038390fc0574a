"""What-if runs in the worker: start one (the page), execute it (the task), read its result.

A run is a row (`WhatIfRun`). Starting one checks everything that can be checked at once (the
policies, hours, spike, that the cluster has a world or a Prometheus to replay) and refuses a
second run while the user's previous one is queued or running: the database's partial unique
constraint decides, so two clicks cannot both start one. The task claims the row with a
conditional UPDATE, runs the simulation under Celery's time limit, and stores each candidate's
summary as JSON, with whether measured history was replayed and where its figures came from. A run whose
worker died never finishes: past the time limit it is marked failed when its user starts the
next one, so nobody is locked out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from fleet.models import ModelDeployment
from scaling.models import WhatIfRun
from scaling.whatif import WhatIf, check_replayable, check_run, max_hours, parse_policy, whatif_compare
from simulator import Summary

# The task's limits (scaling/tasks.py): soft, then hard. A run older than this has lost its worker.
SOFT_TIME_LIMIT_SECONDS = 60
TIME_LIMIT_SECONDS = 75
_SCALARS = (
    "slo_ttft_p95_seconds",
    "slo_violation_minutes",
    "gpu_hours",
    "cost_usd",
    "scale_reversals",
    "peak_replicas",
    "mean_ready_replicas",
    "requests_served",
    "requests_abandoned",
)


def whatif_run_start(
    *, deployment: ModelDeployment, policies: list[str], hours: float, spike: float | None, user, enqueue
) -> WhatIfRun:
    """Check the run and queue it; `enqueue(run_id)` sends it to the worker. ApplicationError (400
    bad input, 409 a run of this user still going) otherwise."""
    candidates = [parse_policy(text) for text in policies]
    check_replayable(deployment)
    check_run(hours=hours, spike=spike, candidates=len(candidates), longest=max_hours(deployment.cluster))
    now = timezone.now()
    WhatIfRun.objects.filter(
        user=user, status__in=WhatIfRun.ACTIVE, created_at__lt=now - timedelta(seconds=TIME_LIMIT_SECONDS + 15)
    ).update(status=WhatIfRun.Status.FAILED, error="did not finish: its worker was lost", finished_at=now)
    try:
        with transaction.atomic():
            run = WhatIfRun.objects.create(
                user=user, deployment=deployment, policies=list(policies), hours=hours, spike=spike, created_at=now
            )
    except IntegrityError:
        raise ApplicationError(
            "your previous what-if is still running: wait for it (at most "
            f"{TIME_LIMIT_SECONDS} s) before starting another",
            status=409,
        ) from None
    # Created outside any transaction (committed already), so the worker can read it at once.
    enqueue(run.id)
    return run


def whatif_run_execute(*, run_id: int) -> WhatIfRun | None:
    """The task's body: claim, simulate, store. None when another worker claimed it first."""
    if WhatIfRun.objects.filter(id=run_id, status=WhatIfRun.Status.QUEUED).update(status=WhatIfRun.Status.RUNNING) != 1:
        return None
    run = WhatIfRun.objects.select_related("deployment__cluster").get(id=run_id)
    try:
        whatif = whatif_compare(
            deployment=run.deployment,
            candidates=[parse_policy(p) for p in run.policies],
            hours=run.hours,
            spike=run.spike,
            now=run.created_at,
        )
    except ApplicationError as exc:
        return _finish(run, status=WhatIfRun.Status.FAILED, error=exc.message)
    return _finish(
        run,
        status=WhatIfRun.Status.DONE,
        result={
            "history": whatif.history,
            "notes": list(whatif.notes),
            "summaries": [summary_json(s) for s in whatif.summaries],
        },
    )


def whatif_run_fail(*, run_id: int, error: str) -> None:
    """The task ran out of time or crashed: say so on the row (the page stops waiting)."""
    WhatIfRun.objects.filter(id=run_id, status__in=WhatIfRun.ACTIVE).update(
        status=WhatIfRun.Status.FAILED, error=error[:500], finished_at=timezone.now()
    )


def _finish(run: WhatIfRun, *, status: str, result=None, error: str = "") -> WhatIfRun:
    WhatIfRun.objects.filter(id=run.id, status=WhatIfRun.Status.RUNNING).update(
        status=status, result=result, error=error[:500], finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def summary_json(summary: Summary) -> dict:
    series = {k: ([t.isoformat() for t in v] if k == "at" else list(v)) for k, v in summary.series.items()}
    return {**{name: getattr(summary, name) for name in _SCALARS}, "series": series}


def run_result(run: WhatIfRun) -> WhatIf:
    """A finished run's result, as `whatif_compare` returned it (the policies parsed again). Rows
    stored before history replays hold only the list of summaries."""
    stored = run.result or []
    if isinstance(stored, list):
        stored = {"history": False, "notes": [], "summaries": stored}
    return WhatIf(
        _summaries(run.policies, stored["summaries"]), history=stored["history"], notes=tuple(stored["notes"])
    )


def _summaries(policies: list[str], rows: list[dict]) -> list[Summary]:
    summaries = []
    for text, stored in zip(policies, rows, strict=False):
        series = dict(stored["series"])
        series["at"] = [datetime.fromisoformat(t) for t in series.get("at", [])]
        summaries.append(Summary(policy=parse_policy(text), series=series, **{n: stored[n] for n in _SCALARS}))
    return summaries
