from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"

    def ready(self) -> None:
        from accounts.scope import scope_paths_declare
        from fleet import sqlite_limits
        from fleet.models import Cluster

        sqlite_limits.connect()
        # A token scoped to clusters sees the Cluster rows of those names (accounts/scope.py).
        scope_paths_declare(Cluster, cluster="name", namespace=None)
