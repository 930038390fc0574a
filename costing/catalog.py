"""The price catalog's seed: the public prices in `costing/data/prices.csv`, read and validated,
loaded by the costing migration and `manage.py demo_seed` (rows already there are left alone)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from core.errors import ApplicationError
from costing.models import CapacityType, InstancePrice

PRICES_CSV = Path(__file__).resolve().parent / "data" / "prices.csv"
PRICE_COLUMNS = (
    "instance_type",
    "region",
    "capacity_type",
    "usd_per_hour",
    "gpu_count",
    "gpu_model",
    "source",
    "source_url",
    "effective_from",
    "notes",
)


def _parse_price_row(row: dict, line: int) -> InstancePrice:
    def fail(column: str, why: str):
        raise ApplicationError(f"prices.csv line {line}: {column} {why}", field=column)

    missing = [c for c in PRICE_COLUMNS if c not in row]
    if missing:
        fail(missing[0], "column is missing")
    if not row["instance_type"].strip():
        fail("instance_type", "is empty")
    if row["capacity_type"] not in CapacityType.values:
        fail("capacity_type", f"{row['capacity_type']!r} is not one of {', '.join(CapacityType.values)}")
    try:
        usd = Decimal(row["usd_per_hour"])
    except InvalidOperation:
        fail("usd_per_hour", f"{row['usd_per_hour']!r} is not a number")
    if not usd.is_finite() or usd < 0:
        fail("usd_per_hour", "must be a positive amount")
    try:
        gpu_count = int(row["gpu_count"])
    except ValueError:
        fail("gpu_count", f"{row['gpu_count']!r} is not a whole number")
    if gpu_count <= 0:
        fail("gpu_count", "must be at least 1")
    try:
        effective_from = date.fromisoformat(row["effective_from"])
    except ValueError:
        fail("effective_from", f"{row['effective_from']!r} is not a YYYY-MM-DD date")
    if not row["source"].strip():
        fail("source", "is empty: every price says where it comes from")
    return InstancePrice(
        instance_type=row["instance_type"].strip(),
        region=row["region"].strip(),
        capacity_type=row["capacity_type"],
        usd_per_hour=usd,
        gpu_count=gpu_count,
        gpu_model=row["gpu_model"].strip(),
        source=row["source"].strip(),
        source_url=row["source_url"].strip(),
        effective_from=effective_from,
        notes=row["notes"].strip(),
    )


def price_catalog_read(path: Path = PRICES_CSV) -> list[InstancePrice]:
    """The public prices in a catalog CSV, validated, as unsaved rows."""
    with open(path, newline="") as fh:
        return [_parse_price_row(row, line) for line, row in enumerate(csv.DictReader(fh), start=2)]


@transaction.atomic
def price_catalog_seed(*, path: Path = PRICES_CSV) -> int:
    """Add the public prices of `costing/data/prices.csv` that are not in the catalog yet.

    Idempotent: a row is identified by (instance type, region, capacity type, effective_from),
    and an existing row is left as it is, so an edit made in the admin survives a re-seed.
    Returns the number of rows added.
    """
    rows = price_catalog_read(path)
    existing = set(
        InstancePrice.objects.filter(cluster__isnull=True).values_list(
            "instance_type", "region", "capacity_type", "effective_from"
        )
    )
    new, seen = [], set()
    for row in rows:
        key = (row.instance_type, row.region, row.capacity_type, row.effective_from)
        if key in existing or key in seen:
            continue
        seen.add(key)
        new.append(row)
    InstancePrice.objects.bulk_create(new, batch_size=500)
    return len(new)
