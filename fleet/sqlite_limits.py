"""SQLite's real limit on query parameters, so bulk writes go in batches of 1,000 rows, not 60.

Django 5.2 assumes SQLite's old compile-time default of 999 parameters per statement and cuts
every `bulk_create` / `bulk_update` to 999 // fields rows: a first sync of a 16,000-GPU cluster
then takes 250 INSERTs. SQLite 3.32+ allows 32,766 by default (Debian's build: 250,000), and the
connection says so (`getlimit`). This reads it on each new connection (Django 6.0 does the
same). Only that connection's features change; other databases are left alone.
"""

from __future__ import annotations

import sqlite3

from django.db.backends.signals import connection_created


def _use_the_real_limit(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    connection.features.max_query_params = max(999, limit)


def connect() -> None:
    connection_created.connect(_use_the_real_limit, dispatch_uid="fleet.sqlite_limits")
