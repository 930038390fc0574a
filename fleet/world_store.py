"""Where a simulated cluster keeps its world between processes: one JSON row per cluster.

The web server, the worker and beat all act on the same simulated world, so its state lives
in the database. Read-modify-write callers (the sync, a scale action) hold the row lock for the
whole step: `with transaction.atomic(): store.load() ... store.save(world)`; on PostgreSQL
`load()` takes `SELECT ... FOR UPDATE`, on SQLite the IMMEDIATE transaction already serialises
writers. Without that lock a sync that advanced a stale copy could overwrite a scale action.
"""

from __future__ import annotations

from django.db import connection, transaction

from fleet.models import Cluster, SimulatedWorld
from simulator import World


class DbWorldStore:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def atomic(self):
        """The simulated backend runs every load -> advance -> save inside this."""
        return transaction.atomic()

    def namespace_writable(self, namespace: str) -> bool:
        """The cluster row's allow-list decides."""
        return self.cluster.namespace_writable(namespace)

    def load(self) -> World:
        rows = SimulatedWorld.objects.filter(cluster=self.cluster)
        if connection.in_atomic_block and connection.features.has_select_for_update:
            rows = rows.select_for_update()
        row = rows.first()
        if row is None:
            from fleet.backends.base import BackendError

            raise BackendError(f"simulated cluster {self.cluster.name} has no world: run `manage.py demo_seed`")
        return World.from_dict(row.state)

    def save(self, world: World) -> None:
        SimulatedWorld.objects.update_or_create(cluster=self.cluster, defaults={"state": world.to_dict()})

    def replace(self, world: World, *, seed: int) -> None:
        with transaction.atomic():
            SimulatedWorld.objects.update_or_create(
                cluster=self.cluster, defaults={"state": world.to_dict(), "seed": seed}
            )
