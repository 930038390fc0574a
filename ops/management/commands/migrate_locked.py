"""`scaledeck migrate_locked`: `migrate`, one process at a time.

Every ScaleDeck pod runs it as an init container, so a new version never serves, works or
schedules against an old schema, and no separate Job has to be ordered before the rollout.
Several pods start at once: on PostgreSQL they queue on an advisory lock, the first migrates,
the others find nothing left to do. (SQLite serialises writers by itself.)
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

# Any constant shared by every ScaleDeck process; "SDMIGRAT" in ASCII.
MIGRATION_LOCK = 0x53444D4947524154


class Command(BaseCommand):
    help = "Apply migrations while holding a database-wide lock (safe from several pods at once)."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        if connection.vendor != "postgresql":
            call_command("migrate", interactive=False, verbosity=verbosity)
            return
        with connection.cursor() as cursor:
            if verbosity:
                self.stdout.write("waiting for the migration lock")
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
            try:
                call_command("migrate", interactive=False, verbosity=verbosity)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
