"""Unallocated GPUs accrued live were keyed by node, the backfilled history by node pool, so the
same spare capacity was listed twice. Rekey the live ones by their node's pool, as accrual now
writes them (`costing.samples.node_pool_key`). Samples of a node in no pool, or whose node row
is gone, keep their node's name: there is no pool to name."""

from collections import defaultdict

from django.db import migrations

NODE_POOL_PREFIX = "nodepool/"  # costing.samples.NODE_POOL_PREFIX, frozen as this migration wrote it


def rekey_by_node_pool(apps, schema_editor):
    CostSample = apps.get_model("costing", "CostSample")
    nodes_by_pool = defaultdict(list)
    rows = (
        CostSample.objects.filter(kind="unallocated", node__isnull=False, node__node_pool__isnull=False)
        .values_list("node_id", "node__node_pool__name")
        .distinct()
    )
    for node_id, pool in rows:
        nodes_by_pool[pool].append(node_id)
    for pool, node_ids in nodes_by_pool.items():
        for i in range(0, len(node_ids), 500):
            CostSample.objects.filter(kind="unallocated", node_id__in=node_ids[i:i + 500]).update(
                node=None, node_name=NODE_POOL_PREFIX + pool
            )


class Migration(migrations.Migration):
    dependencies = [
        ("costing", "0002_seed_price_catalog"),
        ("fleet", "0001_initial"),
    ]

    operations = [migrations.RunPython(rekey_by_node_pool, migrations.RunPython.noop)]
