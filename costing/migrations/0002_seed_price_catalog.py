"""Load the published prices of costing/data/prices.csv, so every installation starts priced.

`manage.py demo_seed` runs the same load (`price_catalog_seed`); both skip rows already there.
"""

from django.db import migrations


def seed(apps, schema_editor):
    from costing.catalog import price_catalog_read

    price_model = apps.get_model("costing", "InstancePrice")
    existing = set(
        price_model.objects.filter(cluster__isnull=True).values_list(
            "instance_type", "region", "capacity_type", "effective_from"
        )
    )
    fields = [f.attname for f in price_model._meta.concrete_fields if f.attname not in ("id", "cluster_id")]
    new = []
    for row in price_catalog_read():
        key = (row.instance_type, row.region, row.capacity_type, row.effective_from)
        if key not in existing:
            existing.add(key)
            new.append(price_model(**{name: getattr(row, name) for name in fields}))
    price_model.objects.bulk_create(new, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("costing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
