"""`manage.py cluster_add NAME --kubeconfig PATH [--context CTX] [--namespaces a,b] [--prometheus-url URL]`.

`--simulated` registers a simulated cluster (seeded with the demo world), `--in-cluster` one
reached through the pod's ServiceAccount.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import ApplicationError
from fleet.models import Cluster
from fleet.services import cluster_add


class Command(BaseCommand):
    help = "Register a cluster."

    def add_arguments(self, parser):
        parser.add_argument("name")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--kubeconfig", default="")
        source.add_argument("--in-cluster", action="store_true")
        source.add_argument("--simulated", action="store_true")
        parser.add_argument("--context", default="")
        parser.add_argument("--namespaces", default="", help="comma-separated allow-list of namespaces to change")
        parser.add_argument("--prometheus-url", default="", help="Prometheus, Thanos or Mimir query URL")
        parser.add_argument("--prometheus-token-file", default="", help="file holding a bearer token")
        parser.add_argument("--prometheus-user", default="", help="basic auth user")
        parser.add_argument("--prometheus-password-file", default="", help="file holding the basic auth password")
        parser.add_argument("--prometheus-timeout", type=float, default=3.0, help="query timeout, seconds")
        parser.add_argument(
            "--prometheus-namespace-label", default="namespace", help="e.g. exported_namespace behind a ServiceMonitor"
        )
        parser.add_argument("--prometheus-pod-label", default="pod", help="e.g. exported_pod behind a ServiceMonitor")
        parser.add_argument(
            "--prometheus-gpu-namespace-label", default="namespace", help="the same for DCGM exporter series"
        )
        parser.add_argument("--prometheus-gpu-pod-label", default="pod", help="the same for DCGM exporter series")
        parser.add_argument("--region", default="")
        parser.add_argument("--seed", type=int, default=7, help="simulated clusters: the world's seed")

    def handle(self, *args, **o):
        backend = Cluster.Backend.SIMULATED if o["simulated"] else Cluster.Backend.KUBERNETES
        namespaces = [n.strip() for n in o["namespaces"].split(",") if n.strip()]
        try:
            cluster = cluster_add(
                name=o["name"],
                backend=backend,
                kubeconfig_path=o["kubeconfig"],
                kube_context=o["context"],
                in_cluster=o["in_cluster"],
                namespaces=namespaces,
                prometheus_url=o["prometheus_url"],
                prometheus_bearer_token_file=o["prometheus_token_file"],
                prometheus_basic_auth_user=o["prometheus_user"],
                prometheus_basic_auth_password_file=o["prometheus_password_file"],
                prometheus_timeout_seconds=o["prometheus_timeout"],
                prometheus_namespace_label=o["prometheus_namespace_label"],
                prometheus_pod_label=o["prometheus_pod_label"],
                prometheus_gpu_namespace_label=o["prometheus_gpu_namespace_label"],
                prometheus_gpu_pod_label=o["prometheus_gpu_pod_label"],
                region=o["region"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if backend == Cluster.Backend.SIMULATED:
            from fleet.world_store import DbWorldStore
            from simulator.demo import demo_world

            DbWorldStore(cluster).replace(demo_world(seed=o["seed"], now=timezone.now()), seed=o["seed"])
        self.stdout.write(
            f"registered cluster {cluster.name} ({cluster.backend}); run `manage.py cluster_sync {cluster.name}`"
        )
