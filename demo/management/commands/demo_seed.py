"""`manage.py demo_seed`: the demo world: a simulated cluster, its prices, demo users, a first sync.

Idempotent: run it again and it keeps what exists (`--reset` rebuilds the simulated world).
"""

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import user_ensure
from costing.backfill import cost_backfill_simulated
from costing.catalog import price_catalog_seed
from costing.models import InstancePrice
from costing.selectors import accrued_span
from fleet.models import Cluster
from fleet.services import cluster_refresh
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world

DEMO_CLUSTER = "demo"
DEMO_USERS = (("admin", "admin"), ("operator", "operator"), ("viewer", "viewer"))
ADMIN_APPS = ("accounts", "fleet", "scaling", "costing")


def demo_users_ensure(*, password: str) -> None:
    """The demo's admin, operator and viewer. The admin is staff with the permissions of ScaleDeck's
    own apps, so `/admin/` (prices, clusters, tokens) opens for it; the others stay out of the admin."""
    for username, role in DEMO_USERS:
        user = user_ensure(username=username, role=role, password=password)
        staff = role == "admin"
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        if staff:
            user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))


class Command(BaseCommand):
    help = "Seed the demo: a simulated GPU cluster with 24 h of history, prices, and demo users."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--reset", action="store_true", help="rebuild the simulated world from scratch")

    def handle(self, *args, seed: int, reset: bool, **options):
        added = price_catalog_seed()
        self.stdout.write(f"price catalog: {InstancePrice.objects.count()} prices ({added} added now)")

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
        if cluster.backend == Cluster.Backend.SIMULATED:
            self._cost_history(cluster)

        password = settings.SCALEDECK_DEMO_PASSWORD
        demo_users_ensure(password=password)
        self.stdout.write(f"demo users: admin, operator, viewer (password: {password})")

    def _cost_history(self, cluster: Cluster) -> None:
        """The cost of the world's past day, so the cost page opens on a day rather than nothing."""
        written = cost_backfill_simulated(cluster=cluster, hours=24)
        if not written:
            self.stdout.write("cost history: nothing added (already accrued)")
            return
        first, last = accrued_span(cluster=cluster)
        self.stdout.write(f"cost history: {written} samples over {(last - first).total_seconds() / 3600:.0f} h")
