"""Sync of a big cluster through the Kubernetes backend: seconds and SQL statements.

    .venv/bin/python bench/sync_kubernetes.py [--nodes 2000 --gpus-per-node 8 --deployments 500]

A fake Kubernetes API over real HTTP (the official client talks to it), in a process of its own
so its serving time is not charged to the client's GIL, serves `big_cluster()`:
by default 2,000 GPU nodes, 16,000 GPUs, 500 vLLM deployments with their pods, ReplicaSets,
HPAs and ScaledObjects, and 12,000 DaemonSet pods the sync must skip. Prints, for a first sync
and for a resync where nothing changed: wall seconds (split into the backend's snapshot and the
database work), SQL statements, and how many of them wrote (INSERT/UPDATE/DELETE). A resync
with no change should write exactly one row: the cluster's sync status. Not a test; uses a
throwaway database (see bench/_django.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._django import setup_django, throwaway_database  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

WRITES = ("INSERT", "UPDATE", "DELETE")


class TimedBackend:
    """The real backend, timing its snapshot so the database's share can be told apart."""

    def __init__(self, backend):
        self.backend = backend
        self.seconds = 0.0

    def snapshot(self):
        started = time.perf_counter()
        try:
            return self.backend.snapshot()
        finally:
            self.seconds = time.perf_counter() - started


def _serve(objects: list, port_out, stop) -> None:
    from tests.fakekube.server import FakeKubeApi

    with FakeKubeApi() as api:
        api.load(objects)
        port_out.send(api.port)
        stop.wait()


@contextmanager
def fake_kube_in_a_process(objects: list) -> Iterator[str]:
    """Serve `objects` from a FakeKubeApi in a forked process; yields its URL."""
    context = multiprocessing.get_context("fork")
    port_in, port_out = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=_serve, args=(objects, port_out, stop), daemon=True)
    process.start()
    try:
        if not port_in.poll(120):
            raise SystemExit("the fake Kubernetes API did not start within 120 s")
        yield f"http://127.0.0.1:{port_in.recv()}"
    finally:
        stop.set()
        process.join(10)


def run_sync(cluster, backend) -> tuple[float, float, Counter, object]:
    from fleet.sync import cluster_sync

    timed = TimedBackend(backend)
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        result = cluster_sync(cluster=cluster, backend=timed)
        total = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"sync failed: {result.error}")
    kinds = Counter(q["sql"].split(None, 1)[0].upper() for q in ctx.captured_queries)
    return total, timed.seconds, kinds, result


def report(label: str, total: float, snapshot: float, kinds: Counter) -> None:
    statements = sum(kinds.values())
    writes = sum(kinds[k] for k in WRITES)
    detail = ", ".join(f"{kinds[k]} {k}" for k in WRITES if kinds[k])
    print(
        f"{label:<18} {total:6.2f} s  (snapshot {snapshot:5.2f} s, database {total - snapshot:5.2f} s)  "
        f"{statements:4d} SQL statements, {writes} writes" + (f" ({detail})" if detail else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--deployments", type=int, default=500)
    args = parser.parse_args()

    from fleet.backends.kubernetes.backend import KubernetesClusterBackend
    from fleet.models import Cluster, Gpu, GpuNode, ModelDeployment, Pod
    from tests.fakekube.objects import big_cluster
    from tests.fakekube.server import write_kubeconfig

    started = time.perf_counter()
    objects = big_cluster(nodes=args.nodes, gpus_per_node=args.gpus_per_node, deployments=args.deployments)
    with fake_kube_in_a_process(objects) as url, throwaway_database():
        kinds = Counter(o["kind"] for o in objects)
        print(
            f"fake Kubernetes API serving {len(objects)} objects "
            f"({', '.join(f'{n} {k}s' for k, n in kinds.most_common())}) "
            f"ready in {time.perf_counter() - started:.1f} s; database: {connection.vendor}"
        )
        kubeconfig = Path(tempfile.mkdtemp(prefix="scaledeck-bench-")) / "kubeconfig"
        write_kubeconfig(kubeconfig, url, "fake-token-0123456789")
        cluster = Cluster.objects.create(
            name="big", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(kubeconfig)
        )

        backend = KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), timeout_seconds=60)
        total, snapshot, first_kinds, result = run_sync(cluster, backend)
        report("first sync", total, snapshot, first_kinds)
        # A fresh backend, as each periodic sync builds one.
        backend = KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), timeout_seconds=60)
        total, snapshot, again_kinds, again = run_sync(cluster, backend)
        report("no-change resync", total, snapshot, again_kinds)

        print(
            f"stored: {GpuNode.objects.count()} nodes, {Gpu.objects.count()} GPUs, "
            f"{ModelDeployment.objects.count()} deployments, {Pod.objects.count()} pods; "
            f"resync: {again.summary().split('; ', 1)[1]}"
        )
        resync_writes = sum(again_kinds[k] for k in WRITES)
        if resync_writes != 1:
            print(f"WARNING: the no-change resync ran {resync_writes} write statements, not 1")


if __name__ == "__main__":
    main()
