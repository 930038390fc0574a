"""`scaledeck migrate_locked`: pods starting together migrate one at a time."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from ops.management.commands.migrate_locked import MIGRATION_LOCK
from tests.conftest import database_url_for_subprocess


@pytest.mark.postgres
def test_it_waits_for_the_pod_holding_the_lock_then_migrates(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the migration lock is PostgreSQL's advisory lock (SQLite serialises writers itself)")
    outcome: dict = {}

    def another_pod():
        try:
            call_command("migrate_locked", verbosity=0)
            outcome["done"] = True
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc
        finally:
            connection.close()

    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as first_pod:
        first_pod.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        waiting = threading.Thread(target=another_pod)
        waiting.start()
        waiting.join(timeout=1.5)
        assert waiting.is_alive() and not outcome, "migrated while another pod held the lock"
        first_pod.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
        waiting.join(timeout=60)
    assert outcome == {"done": True}


def test_it_migrates_without_a_lock_on_sqlite(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    call_command("migrate_locked", verbosity=0)  # nothing to apply: the test database is current
