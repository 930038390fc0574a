"""Celery front door for repartitioning: run one slice of a node's MIG application, and send
itself again after the wait the slice asked for (a drain or the GPU operator takes minutes; no
worker sits through them)."""

from __future__ import annotations

from celery import shared_task

from fleet.backends.registry import cluster_backend
from fleet.models import Cluster
from mig.apply import mig_application_run, mig_applications_recover
from mig.layouts import mig_config_refresh
from mig.models import MigApplication


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90, ignore_result=True
)
def run_mig_application(self, application_id: int) -> str:
    application = MigApplication.objects.select_related("cluster").get(id=application_id)
    result = mig_application_run(application_id=application_id, backend=cluster_backend(application.cluster))
    if result.wait_seconds is not None and not self.request.is_eager:
        # Eager (tests, one-process demo) would recurse without time passing: the next
        # `mig_application_run` call from there, or a resume, carries on.
        run_mig_application.apply_async((application_id,), countdown=result.wait_seconds)
    return f"MIG application {application_id}: {result.status}"


@shared_task(acks_late=True, soft_time_limit=30, time_limit=60, ignore_result=True)
def recover_mig_applications() -> str:
    """Beat: send again the repartitionings whose message was lost (a broker restart, a worker
    killed between two slices)."""
    ids = mig_applications_recover()
    for application_id in ids:
        run_mig_application.delay(application_id)
    return f"{len(ids)} MIG applications sent again"


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def refresh_mig_configs() -> str:
    """Beat: read each Kubernetes cluster's mig-parted ConfigMap, so plans offer the layouts its
    GPU operator can apply. One cluster's failure is kept on its row and does not stop the others."""
    clusters = list(Cluster.objects.filter(backend=Cluster.Backend.KUBERNETES).order_by("name"))
    problems = [
        record.cluster.name
        for record in (mig_config_refresh(cluster=c, backend=cluster_backend(c)) for c in clusters)
        if record.problem
    ]
    return f"MIG layouts read for {len(clusters) - len(problems)} of {len(clusters)} clusters" + (
        f"; not for {', '.join(problems)}" if problems else ""
    )
