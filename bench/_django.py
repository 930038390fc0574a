"""Django for the bench scripts: settings from the environment, and a throwaway database.

    from bench._django import setup_django, throwaway_database
    setup_django()
    with throwaway_database():
        ...

The database is Django's test database: a scratch SQLite file in a temp folder, or, when
DATABASE_URL names a server, a `test_` database on it. It is dropped on the way out.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def setup_django() -> None:
    os.environ.setdefault("SCALEDECK_DATA_DIR", tempfile.mkdtemp(prefix="scaledeck-bench-"))
    os.environ.setdefault("SCALEDECK_DEBUG", "0")
    os.environ.setdefault("SCALEDECK_SECRET_KEY", "bench-" + "x" * 60)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    import django

    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
