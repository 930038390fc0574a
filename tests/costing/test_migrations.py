"""Data migrations of costing, run on rows as the code before them wrote them."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps

from costing.models import CostSample
from tests.factories import ClusterFactory, GpuNodeFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
rekey = importlib.import_module("costing.migrations.0003_unallocated_gpus_keyed_by_node_pool")


def spare_gpus(node, **fields) -> CostSample:
    return CostSample.objects.create(
        cluster=node.cluster,
        cluster_name=node.cluster.name,
        node=node,
        node_name=node.name,
        kind="unallocated",
        hour=T0,
        start=T0,
        end=T0 + timedelta(hours=1),
        gpus=Decimal(2),
        gpu_hours=Decimal(2),
        idle=True,
        idle_gpu_hours=Decimal(2),
        **fields,
    )


def test_it_rekeys_live_spare_gpus_by_their_node_pool():
    cluster = ClusterFactory(name="prod")
    pooled = [spare_gpus(GpuNodeFactory(cluster=cluster, name=f"a100-{i}")) for i in range(3)]
    alone = spare_gpus(GpuNodeFactory(cluster=cluster, name="hand-made", node_pool=None))

    rekey.rekey_by_node_pool(apps, None)

    for sample in pooled:
        sample.refresh_from_db()
        assert (sample.node_id, sample.node_name) == (None, "nodepool/a100")
    alone.refresh_from_db()
    assert alone.node_name == "hand-made" and alone.node_id is not None  # no pool to name
