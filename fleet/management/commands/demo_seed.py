"""`manage.py demo_seed`: the demo world: a simulated cluster, its prices, demo users, a first sync.

Idempotent: run it again and it keeps what exists (`--reset` rebuilds the simulated world).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import user_ensure
from fleet.models import Cluster
from fleet.services import cluster_refresh
from fleet.world_store import DbWorldStore

DEMO_CLUSTER = "demo"
DEMO_USERS = (("admin", "admin"), ("operator", "operator"), ("viewer", "viewer"))


class Command(BaseCommand):
    help = "Seed the demo: a simulated GPU cluster with 24 h of history, prices, and demo users."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--reset", action="store_true", help="rebuild the simulated world from scratch")

    def handle(self, *args, seed: int, reset: bool, **options):
        from costing.services import price_catalog_seed
        from simulator.demo import demo_world

        prices = price_catalog_seed()
        self.stdout.write(f"price catalog: {prices} prices")

        cluster, created = Cluster.objects.get_or_create(
            name=DEMO_CLUSTER,
            defaults={
                "backend": Cluster.Backend.SIMULATED,
                "namespaces": ["llm-prod", "team-search", "team-research"],
                "region": "us-east-1",
            },
        )
        store = DbWorldStore(cluster)
        if created or reset or not hasattr(cluster, "simulated_world"):
            self.stdout.write("building the simulated world (24 h of history)...")
            store.replace(demo_world(seed=seed, now=timezone.now()), seed=seed)
        result = cluster_refresh(cluster=cluster)
        if not result.ok:
            raise CommandError(f"first sync of the demo cluster failed: {result.error}")
        self.stdout.write(result.summary())

        password = settings.SCALEDECK_DEMO_PASSWORD
        for username, role in DEMO_USERS:
            user_ensure(username=username, role=role, password=password)
        self.stdout.write(f"demo users: admin, operator, viewer (password: {password})")
