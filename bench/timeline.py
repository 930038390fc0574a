"""How long a deployment's scaling timeline takes with 10,000 stored events, and how many queries.

    .venv/bin/python bench/timeline.py [-n 5] [--events 10000]

In a throwaway database (SQLite, or DATABASE_URL's server), stores N events for one deployment
(pods created / scheduled / pulled / started / ready, FailedScheduling, rescales; a NodeClaim
per 50 pods on the nodes its pods landed on) plus scale actions, then asks for
- the API's first page, a middle page and the last page (`?limit=100`),
- the page's timeline fragment (the latest 100 rows),
through Django's test client as a signed-in viewer, and prints per request the median and worst
time and the SQL statements it ran. Target: under 200 ms, with the same number of statements
whatever the page. Not a test; prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._django import setup_django, throwaway_database  # noqa: E402

TARGET_MS = 200
POD_STEPS = [
    ("pod_created", 0),
    ("scheduling_failed", 1),
    ("pod_scheduled", 400),
    ("image_pulling", 401),
    ("image_pulled", 520),
    ("container_started", 525),
    ("pod_ready", 760),
]


def seed(events: int):
    from accounts.models import Role
    from fleet.models import Cluster, ModelDeployment, ScalingEvent
    from scaling.models import ScaleAction
    from tests.factories import UserFactory

    cluster = Cluster.objects.create(name="bench", backend=Cluster.Backend.KUBERNETES, kubeconfig_path="/x")
    deployment = ModelDeployment.objects.create(cluster=cluster, namespace="llm", name="llama")
    start = datetime.now(UTC) - timedelta(days=6)
    rows = []
    pod = 0
    while len(rows) < events:
        t0 = start + timedelta(seconds=pod * 45)
        node = f"gpu-{pod // 8}"
        for kind, offset in POD_STEPS:
            rows.append(
                ScalingEvent(
                    cluster=cluster,
                    uid=f"pod-{pod}-{kind}",
                    at=t0 + timedelta(seconds=offset),
                    kind=kind,
                    reason=kind,
                    namespace="llm",
                    object_kind="Pod",
                    object_name=f"llama-abc-{pod}",
                    message=f"{kind} of pod {pod}",
                    source="pod",
                    deployment=deployment,
                    node_name=node if kind == "pod_scheduled" else "",
                )
            )
        if pod % 8 == 0:
            for kind, offset in (("nodeclaim_launched", 10), ("node_registered", 300), ("node_ready", 390)):
                rows.append(
                    ScalingEvent(
                        cluster=cluster,
                        uid=f"claim-{pod}-{kind}",
                        at=t0 + timedelta(seconds=offset),
                        kind=kind,
                        reason=kind,
                        object_kind="NodeClaim",
                        object_name=f"claim-{pod}",
                        source="nodeclaim",
                        node_name=node,
                        node_pool="gpu-h100",
                    )
                )
        pod += 1
    ScalingEvent.objects.bulk_create(rows[:events], batch_size=1000)
    ScaleAction.objects.bulk_create(
        [
            ScaleAction(
                actor_label="alice",
                actor_key="user:1",
                source="api",
                cluster=cluster,
                namespace="llm",
                deployment=deployment,
                reason="bench",
                status="succeeded",
                created_at=start + timedelta(hours=h),
            )
            for h in range(0, 140, 2)
        ]
    )
    user = UserFactory(username="bench-viewer", role=Role.VIEWER)
    return deployment, user, start


def measure(client, url: str, params: dict, runs: int) -> tuple[list[float], int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    statements = 0
    status = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            answer = client.get(url, params)
            times.append((time.perf_counter() - began) * 1000)
        statements, status = len(queries.captured_queries), answer.status_code
    return times, statements, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="requests per case")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    setup_django()
    from django.test import Client

    with throwaway_database():
        deployment, user, start = seed(args.events)
        client = Client()
        client.force_login(user)
        client.get(f"/api/v1/deployments/{deployment.id}/timeline/")  # imports, first-use costs
        window = {"start": start.isoformat(), "end": (start + timedelta(days=7)).isoformat()}
        api = f"/api/v1/deployments/{deployment.id}/timeline/"
        total = client.get(api, {**window, "limit": 1}).json()["count"]
        cases = [
            ("API first page (100 rows)", api, {**window, "limit": 100}),
            ("API middle page", api, {**window, "limit": 100, "offset": total // 2}),
            ("API last page", api, {**window, "limit": 100, "offset": max(0, total - 100)}),
            ("page fragment (latest 100)", f"/scaling/deployments/{deployment.id}/timeline/", window),
        ]
        print(
            f"timeline of one deployment: {args.events:,} stored events, {total:,} rows in the range "
            f"(target {TARGET_MS} ms, constant statements)"
        )
        worst = 0.0
        for label, url, params in cases:
            times, statements, status = measure(client, url, params, args.n)
            worst = max(worst, max(times))
            print(
                f"  {label:<28} median {statistics.median(times):7.1f} ms  worst {max(times):7.1f} ms  "
                f"{statements} SQL statements  HTTP {status}"
            )
        print(f"worst {worst:.1f} ms: {'within' if worst < TARGET_MS else 'OVER'} the {TARGET_MS} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
