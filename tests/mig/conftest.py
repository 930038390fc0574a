"""The fleet tests' users, clients and fake metrics backend, shared with the MIG tests."""

import pytest  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from mig.models import MigPlan  # noqa: E402
from tests.factories import ApiTokenFactory, ClusterFactory, GpuNodeFactory, NodePoolFactory  # noqa: E402
from tests.fleet.conftest import (  # noqa: F401
    FakeMetricsBackend,
    api,
    fake_metrics,
    operator,
    operator_client,
    viewer,
    viewer_client,
)


@pytest.fixture
def api_as(db):
    """api_as(role): an API client sending a bot token of that role."""

    def client(role: str) -> APIClient:
        token = ApiTokenFactory(role=role)
        api_client = APIClient()
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
        return api_client

    return client


@pytest.fixture
def plan(db):
    """A stored plan moving node a100-0 (8 x A100 80GB, pool a100 of cluster prod) to all-3g.40gb."""
    cluster = ClusterFactory(name="prod")
    pool = NodePoolFactory(cluster=cluster, name="a100")
    GpuNodeFactory(cluster=cluster, node_pool=pool, name="a100-0")
    return MigPlan.objects.create(
        cluster=cluster,
        node_pool=pool,
        actor_label="alice",
        nodes=[
            {
                "node": "a100-0",
                "from_config": "",
                "to_config": "all-3g.40gb",
                "devices_before": {},
                "devices_after": {"3g.40gb": 16},
                "freed": False,
                "gpu_count": 8,
                "whole_gpus_after": 0,
            }
        ],
    )
