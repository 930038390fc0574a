"""The price catalog: seeded from costing/data/prices.csv, idempotently; edited in the admin."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from core.errors import ApplicationError
from costing.catalog import PRICE_COLUMNS, price_catalog_read, price_catalog_seed
from costing.models import InstancePrice
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REQUIRED = (
    {
        ("us-east-1", t)
        for t in (
            "p4d.24xlarge",
            "p4de.24xlarge",
            "p5.48xlarge",
            "p5en.48xlarge",
            "g5.xlarge",
            "g5.2xlarge",
            "g5.12xlarge",
            "g5.48xlarge",
            "g6.xlarge",
            "g6.12xlarge",
            "g6.48xlarge",
            "g6e.xlarge",
            "g6e.12xlarge",
            "g6e.48xlarge",
            "p3.2xlarge",
            "p3.8xlarge",
            "p3.16xlarge",
        )
    }
    | {("us-central1", t) for t in ("a2-highgpu-1g", "a2-highgpu-8g", "a2-ultragpu-8g", "a3-highgpu-8g")}
    | {
        ("eastus", t)
        for t in (
            "Standard_ND96asr_v4",
            "Standard_ND96amsr_A100_v4",
            "Standard_ND96isr_H100_v5",
            "Standard_NC24ads_A100_v4",
            "Standard_NC40ads_H100_v5",
        )
    }
)


def test_it_ships_an_on_demand_price_with_a_source_for_every_required_instance_type():
    rows = price_catalog_read()
    on_demand = {(r.region, r.instance_type) for r in rows if r.capacity_type == "on-demand"}
    assert on_demand >= REQUIRED
    assert all(r.source and r.source_url.startswith("https://") and r.effective_from for r in rows)
    assert all(r.notes for r in rows if r.capacity_type == "spot")  # spot moves: say when and how it was read


def test_it_keeps_the_catalog_sane():
    rows = price_catalog_read()
    assert len({(r.instance_type, r.region, r.capacity_type, r.effective_from) for r in rows}) == len(rows)
    latest = {}
    for r in sorted(rows, key=lambda r: r.effective_from):
        latest[(r.instance_type, r.region, r.capacity_type)] = r
    for (itype, region, capacity), row in latest.items():
        if capacity == "spot":
            assert row.usd_per_hour < latest[(itype, region, "on-demand")].usd_per_hour, itype
    # p5 history: the June 2025 price reduction is a new row, the old price prices the past.
    p5 = sorted(
        (r for r in rows if r.instance_type == "p5.48xlarge" and r.capacity_type == "on-demand"),
        key=lambda r: r.effective_from,
    )
    assert [(r.usd_per_hour, r.effective_from) for r in p5] == [
        (Decimal("98.32"), date(2023, 7, 26)),
        (Decimal("55.04"), date(2025, 6, 1)),
    ]


def test_it_seeds_once_and_leaves_admin_edits_alone():
    added = price_catalog_seed()
    assert added == InstancePrice.objects.count() == len(price_catalog_read())

    InstancePrice.objects.filter(instance_type="g5.xlarge", capacity_type="on-demand").update(
        usd_per_hour=Decimal("0.99")
    )
    assert price_catalog_seed() == 0
    assert InstancePrice.objects.get(instance_type="g5.xlarge", capacity_type="on-demand").usd_per_hour == Decimal(
        "0.99"
    )


def write_csv(tmp_path, **overrides):
    row = {
        "instance_type": "p5.48xlarge",
        "region": "us-east-1",
        "capacity_type": "on-demand",
        "usd_per_hour": "55.04",
        "gpu_count": "8",
        "gpu_model": "H100",
        "source": "AWS",
        "source_url": "https://aws.amazon.com/",
        "effective_from": "2025-06-01",
        "notes": "",
    }
    row.update(overrides)
    path = tmp_path / "prices.csv"
    path.write_text(",".join(PRICE_COLUMNS) + "\n" + ",".join(row[c] for c in PRICE_COLUMNS) + "\n")
    return path


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"capacity_type": "cheap"}, "capacity_type"),
        ({"usd_per_hour": "lots"}, "usd_per_hour"),
        ({"usd_per_hour": "-1"}, "usd_per_hour"),
        ({"gpu_count": "0"}, "gpu_count"),
        ({"effective_from": "June"}, "effective_from"),
        ({"source": ""}, "source"),
        ({"instance_type": ""}, "instance_type"),
    ],
)
def test_it_refuses_a_bad_catalog_row_naming_the_line_and_column(tmp_path, override, field):
    with pytest.raises(ApplicationError) as caught:
        price_catalog_seed(path=write_csv(tmp_path, **override))

    assert caught.value.field == field
    assert "line 2" in caught.value.message
    assert not InstancePrice.objects.exists()


def test_it_lets_an_admin_edit_prices_in_the_admin(client):
    price_catalog_seed()
    admin = UserFactory(username="boss", role="admin", is_staff=True, is_superuser=True)
    client.force_login(admin)

    listing = client.get(reverse("admin:costing_instanceprice_changelist"), {"q": "p5.48xlarge"})
    price = InstancePrice.objects.filter(instance_type="p5.48xlarge").first()
    page = client.get(reverse("admin:costing_instanceprice_change", args=[price.id]))

    assert listing.status_code == 200 and "p5.48xlarge" in listing.content.decode()
    assert page.status_code == 200 and "Negotiated price" in page.content.decode()
    for name in ("costsample", "costwatermark"):
        assert client.get(reverse(f"admin:costing_{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:costing_{name}_add")).status_code == 403
