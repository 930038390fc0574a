"""SQLite bulk writes are cut by the connection's real parameter limit, not Django's 999."""

from __future__ import annotations

import pytest
from django.db import connection

from fleet.models import Pod


@pytest.mark.django_db
def test_it_lets_a_bulk_insert_of_pods_go_in_batches_of_a_thousand():
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite has the 999-parameter default")
    connection.ensure_connection()
    fields = [f for f in Pod._meta.concrete_fields if not f.primary_key]
    assert len(fields) > 10  # at 999 parameters that would be fewer than 100 rows per INSERT
    assert connection.ops.bulk_batch_size(fields, [None] * 1000) >= 1000
