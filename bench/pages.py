"""Page and API timings at fleet scale: 500 deployments, 2,000 GPU nodes, 16,000 GPUs.

Prints, for each page and endpoint, the median server time over several requests and the
number of SQL queries, so a regression (or an N+1) shows as a figure. Not a test: run it with
`make bench` or `.venv/bin/python bench/pages.py [--deployments 500 --nodes 2000]`.
Uses a throwaway SQLite database (or DATABASE_URL's server, in a test database).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SCALEDECK_ALLOWED_HOSTS"] = "testserver"

from bench._django import setup_django, throwaway_database  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def seed(deployments: int, nodes: int) -> None:
    from django.utils import timezone

    from costing.catalog import price_catalog_seed
    from fleet.models import Cluster, Gpu, GpuNode, ModelDeployment, NodePool, Pod

    price_catalog_seed()
    now = timezone.now()
    cluster = Cluster.objects.create(
        name="big",
        backend=Cluster.Backend.KUBERNETES,
        kubeconfig_path="/dev/null",
        last_sync_ok_at=now,
        last_sync_at=now,
        last_sync_status="ok",
    )
    pool = NodePool.objects.create(cluster=cluster, name="a100", instance_types=["p4de.24xlarge"])
    GpuNode.objects.bulk_create(
        GpuNode(
            cluster=cluster,
            name=f"node-{i:05d}",
            node_pool=pool,
            instance_type="p4de.24xlarge",
            region="us-east-1",
            capacity_type="spot" if i % 4 == 0 else "on-demand",
            gpu_product="NVIDIA-A100-SXM4-80GB",
            gpu_count=8,
            gpu_memory_mib=81920,
            capacity={"nvidia.com/gpu": 8},
            allocatable={"nvidia.com/gpu": 8},
            ready=True,
        )
        for i in range(nodes)
    )
    node_rows = list(GpuNode.objects.filter(cluster=cluster).order_by("name"))
    Gpu.objects.bulk_create(
        (Gpu(node=n, index=g, product=n.gpu_product, memory_mib=81920) for n in node_rows for g in range(8)),
        batch_size=2000,
    )
    ModelDeployment.objects.bulk_create(
        ModelDeployment(
            cluster=cluster,
            namespace=f"team-{i % 20}",
            name=f"model-{i:04d}",
            model=f"org/model-{i}",
            replicas_desired=2,
            replicas_ready=2,
            gpu_resource="nvidia.com/gpu",
            gpu_per_replica=1,
        )
        for i in range(deployments)
    )
    pods = []
    for i, dep in enumerate(ModelDeployment.objects.filter(cluster=cluster).order_by("name")):
        for r in range(2):
            pods.append(
                Pod(
                    cluster=cluster,
                    namespace=dep.namespace,
                    name=f"{dep.name}-{r}",
                    deployment=dep,
                    node=node_rows[(2 * i + r) % len(node_rows)],
                    phase="Running",
                    ready=True,
                    gpu_requests={"nvidia.com/gpu": 1},
                    owner_kind="Deployment",
                    owner_name=dep.name,
                )
            )
    Pod.objects.bulk_create(pods, batch_size=2000)


def measure(client, url: str, repeats: int) -> tuple[float, int, int]:
    client.get(url)  # warm caches
    times = []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(ctx.captured_queries), response.status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from django.test import Client

    from accounts.services import user_ensure

    with throwaway_database():
        started = time.perf_counter()
        seed(args.deployments, args.nodes)
        print(
            f"seeded {args.deployments} deployments, {args.nodes} nodes, {args.nodes * 8} GPUs "
            f"in {time.perf_counter() - started:.1f} s ({connection.vendor})"
        )
        user = user_ensure(username="bench", role="admin")
        client = Client()
        client.force_login(user)
        from fleet.models import GpuNode, ModelDeployment

        dep = ModelDeployment.objects.order_by("id").first()
        node = GpuNode.objects.order_by("id").first()
        urls = [
            "/",
            "/?page=5",
            "/nodes/",
            "/nodes/?page=20",
            f"/deployments/{dep.id}/",
            f"/deployments/{dep.id}/charts/?range=1h",
            "/costs/",
            "/api/v1/deployments/?limit=100",
            "/api/v1/deployments/?limit=500",
            "/api/v1/nodes/?limit=1000",
            f"/api/v1/nodes/{node.id}/",
            "/api/v1/clusters/",
            "/api/v1/costs/?group_by=deployment",
            "/scaling/actions/",
            "/api/v1/actions/",
        ]
        print(f"{'page or endpoint':45} {'median ms':>10} {'queries':>8} {'status':>7}")
        for url in urls:
            ms, queries, status = measure(client, url, args.repeats)
            print(f"{url:45} {ms:10.1f} {queries:8d} {status:7d}")


if __name__ == "__main__":
    main()
