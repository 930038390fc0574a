"""`manage.py cluster_sync NAME`: one sync now; non-zero exit with a one-line reason on failure."""

import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from fleet.models import Cluster
from fleet.services import cluster_refresh


@contextmanager
def _one_line_on_failure(verbosity: int):
    """At a terminal the CommandError's line is the whole story. The sync's own warning (meant
    for worker logs) and urllib3's per-request retry notices would repeat it several times on
    stderr, so warnings stay out of the console unless asked for with -v 2."""
    if verbosity >= 2:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


class Command(BaseCommand):
    help = "Sync one cluster now (nodes, GPUs, MIG, deployments, autoscalers, pods, quotas)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name: str, verbosity: int = 1, **options):
        cluster = Cluster.objects.filter(name=name).first()
        if cluster is None:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no cluster named {name!r} (known: {known})")
        with _one_line_on_failure(verbosity):
            result = cluster_refresh(cluster=cluster)
        if not result.ok:
            raise CommandError(f"sync of {name} failed: {result.error}")
        self.stdout.write(result.summary())
        for warning in result.warnings:
            self.stdout.write(f"  warning: {warning}")
