"""Advisor runs: start one (API), execute it (the task, with progress and cancel), cancel it; traces.

The search is `scaling.advice.advice_run`; a run row carries its inputs, its progress (0-1,
written every few candidates) and, when done, the same JSON as `manage.py whatif --advise
--json`. Cancelling sets a flag the search reads between candidates: the worker stops at the
next one and the row says "cancelled". Nothing here touches a cluster.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from accounts.models import Role, role_at_least
from accounts.services import user_role
from advice.models import AdviceRun, TraceUpload
from core.errors import ApplicationError
from fleet.models import Cluster, ModelDeployment
from scaling.advice import advice_run, check_objective
from simulator.advisor import Cancelled
from simulator.traces import Spike, TraceError, read_trace_file

MAX_TRACE_BYTES = 100 * 1024 * 1024
PROGRESS_EVERY = 4  # candidates between progress writes


def _traces_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def trace_upload_create(*, user, upload) -> TraceUpload:
    """Keep an uploaded trace after reading it through once (streamed); refuse it otherwise."""
    if upload.size > MAX_TRACE_BYTES:
        raise ApplicationError(f"the trace is {upload.size / 1048576:.0f} MB; at most 100 MB is accepted", field="file")
    path = _traces_dir() / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        trace = read_trace_file(path)
    except TraceError as exc:
        path.unlink(missing_ok=True)
        raise ApplicationError(f"trace refused: {exc}", field="file") from exc
    name = Path(upload.name or "trace.csv").name[:200]
    return TraceUpload.objects.create(
        user=user,
        name=name,
        path=str(path),
        size_bytes=upload.size,
        requests=trace.requests,
        seconds=trace.seconds,
        bad_rows=trace.bad_rows,
    )


def _spike(spike: dict | None) -> Spike | None:
    if spike is None:
        return None
    try:
        return Spike(
            float(spike["multiplier"]),
            int(spike.get("start_seconds", 3600)),
            int(spike.get("ramp_seconds", 600)),
            int(spike.get("duration_seconds", 1800)),
        )
    except TraceError as exc:
        raise ApplicationError(str(exc), field="spike") from exc


def advice_start(
    *,
    user,
    deployment: ModelDeployment,
    trace: TraceUpload | None,
    hours: float | None,
    rate_multiplier: float,
    spike: dict | None,
    slo: float | None,
    attainment: float,
    enqueue,
) -> AdviceRun:
    """Check the request, store the run and queue it; `enqueue(run_id)` sends it to the worker."""
    slo = deployment.slo_seconds if slo is None else slo
    check_objective(slo=slo, attainment=attainment, hours=hours, rate_multiplier=rate_multiplier)
    _spike(spike)
    if deployment.cluster.backend != Cluster.Backend.SIMULATED and not deployment.cluster.prometheus_url:
        # modelled from its history (scaling.history), which only Prometheus holds
        raise ApplicationError(
            f"{deployment.cluster.name} has no Prometheus to read the deployment's history from", field="deployment"
        )
    run = AdviceRun.objects.create(
        user=user,
        deployment=deployment,
        trace=trace,
        hours=hours,
        rate_multiplier=rate_multiplier,
        spike=spike,
        slo_seconds=slo,
        attainment=attainment,
    )
    enqueue(run.id)
    return run


def advice_execute(*, run_id: int) -> AdviceRun | None:
    """The task's body: claim the run, search, store the result. None when it was claimed already."""
    if (
        AdviceRun.objects.filter(id=run_id, status=AdviceRun.Status.QUEUED, cancel_requested=False).update(
            status=AdviceRun.Status.RUNNING
        )
        != 1
    ):
        AdviceRun.objects.filter(id=run_id, status=AdviceRun.Status.QUEUED).update(
            status=AdviceRun.Status.CANCELLED, finished_at=timezone.now()
        )
        return None
    run = AdviceRun.objects.select_related("deployment__cluster", "trace").get(id=run_id)

    def progress(done: int, expected: int) -> None:
        if done % PROGRESS_EVERY == 0:
            AdviceRun.objects.filter(id=run_id).update(progress=round(min(0.99, done / expected), 3))

    def cancelled() -> bool:
        return AdviceRun.objects.filter(id=run_id, cancel_requested=True).exists()

    try:
        advice = advice_run(
            deployment=run.deployment,
            trace_path=run.trace.path if run.trace else None,
            hours=run.hours,
            rate_multiplier=run.rate_multiplier,
            spike=_spike(run.spike),
            slo=run.slo_seconds,
            attainment=run.attainment,
            progress=progress,
            cancelled=cancelled,
        )
    except Cancelled:
        return _finish(run, status=AdviceRun.Status.CANCELLED)
    except ApplicationError as exc:
        return _finish(run, status=AdviceRun.Status.FAILED, error=exc.message)
    return _finish(run, status=AdviceRun.Status.DONE, result=advice.as_json())


def _finish(run: AdviceRun, *, status: str, error: str = "", result: dict | None = None) -> AdviceRun:
    AdviceRun.objects.filter(id=run.id).update(
        status=status,
        error=error[:500],
        result=result,
        progress=1.0 if status == AdviceRun.Status.DONE else F("progress"),
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


def advice_fail(*, run_id: int, error: str) -> None:
    AdviceRun.objects.filter(id=run_id, status__in=AdviceRun.ACTIVE).update(
        status=AdviceRun.Status.FAILED, error=error[:500], finished_at=timezone.now()
    )


def advice_cancel(*, run: AdviceRun, user) -> AdviceRun:
    """Ask a queued or running search to stop (its owner, or an operator)."""
    if run.user_id != user.id and not role_at_least(user_role(user), Role.OPERATOR):
        raise ApplicationError("only the person who started this advice, or an operator, can cancel it", status=403)
    if run.status not in AdviceRun.ACTIVE:
        raise ApplicationError(f"this advice is already {run.get_status_display()}", status=409)
    AdviceRun.objects.filter(id=run.id).update(cancel_requested=True)
    AdviceRun.objects.filter(id=run.id, status=AdviceRun.Status.QUEUED).update(
        status=AdviceRun.Status.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run
