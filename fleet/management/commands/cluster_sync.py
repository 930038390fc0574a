"""`manage.py cluster_sync NAME`: one sync now; non-zero exit with a one-line reason on failure."""

from django.core.management.base import BaseCommand, CommandError

from fleet.models import Cluster
from fleet.services import cluster_refresh


class Command(BaseCommand):
    help = "Sync one cluster now (nodes, GPUs, MIG, deployments, autoscalers, pods, quotas)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name: str, **options):
        cluster = Cluster.objects.filter(name=name).first()
        if cluster is None:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no cluster named {name!r} (known: {known})")
        result = cluster_refresh(cluster=cluster)
        if not result.ok:
            raise CommandError(f"sync of {name} failed: {result.error}")
        self.stdout.write(result.summary())
