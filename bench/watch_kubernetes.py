"""Watch-based sync of a big cluster (`cluster_watch`): first list, quiet steady state, small changes.

    .venv/bin/python bench/watch_kubernetes.py [--nodes 2000 --gpus-per-node 8 --deployments 500]
                                               [--steady-seconds 600] [--bookmark-seconds 60]

A fake Kubernetes API over real HTTP, in a process of its own (as in bench/sync_kubernetes.py),
serves `big_cluster()`: by default 2,000 GPU nodes, 16,000 GPUs, 500 vLLM deployments and
17,750 pods (12,000 of them DaemonSet pods the sync skips), and watches of every kind. One
`ClusterWatcher` (what `manage.py cluster_watch` runs) then:

1. lists every kind once and applies it as one full sync: seconds, split into listing (the API
   server and JSON), reading the objects, and the database; SQL statements;
2. sits through a steady state where nothing changes (`--steady-seconds`, 10 minutes by default;
   shorter runs also print what 10 minutes means): list calls, database writes (the lease
   renewal, which `cluster_watch` does every few seconds, counted apart), and the bytes the API
   server sent, per minute, against re-listing everything every 15 s as the beat's sync does;
3. sees one pod turn Ready: seconds from its watch event to the committed row, SQL statements;
4. sees 100 pods change within one second: how many batches, statements, seconds.
Not a test; uses a throwaway database (see bench/_django.py).
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._django import setup_django, throwaway_database  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

WRITES = ("INSERT", "UPDATE", "DELETE")
RELIST_SECONDS = 15  # the beat's sync interval (SCALEDECK_SYNC_INTERVAL_SECONDS)


def _ready(pod: dict, ready: bool) -> None:
    conditions = [c for c in pod["status"].get("conditions", []) if c["type"] != "Ready"]
    pod["status"]["conditions"] = [*conditions, {"type": "Ready", "status": "True" if ready else "False"}]


def _serve(objects: list, bookmark_seconds: float, control) -> None:
    """The fake API server's process: serves, and answers the bench's commands on `control`."""
    from tests.fakekube.server import FakeKubeApi

    with FakeKubeApi() as api:
        api.load(objects)
        api.watches.bookmark_seconds = bookmark_seconds
        control.send(api.port)
        while True:
            command, *args = control.recv()
            if command == "stop":
                return
            if command == "stats":
                lists = sum(1 for r in api.requests if r.method == "GET" and "watch" not in r.query)
                watches = sum(1 for r in api.requests if "watch" in r.query)
                control.send((lists, watches, api.bytes_served))
            elif command == "set_ready":
                pods, ready, spread = args
                started = time.time()
                for i, (namespace, name) in enumerate(pods):
                    pod = api.get("Pod", namespace, name)
                    _ready(pod, ready)
                    del pod["metadata"]["resourceVersion"]
                    api.load(pod)
                    if spread and i < len(pods) - 1:
                        time.sleep(spread / len(pods))
                control.send((started, time.time()))


class FakeApi:
    def __init__(self, objects: list, bookmark_seconds: float):
        context = multiprocessing.get_context("fork")
        self._control, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(objects, bookmark_seconds, theirs), daemon=True)
        self.process.start()
        if not self._control.poll(180):
            raise SystemExit("the fake Kubernetes API did not start within 180 s")
        self.url = f"http://127.0.0.1:{self._control.recv()}"

    def ask(self, *command):
        self._control.send(command)
        return self._control.recv()

    def close(self) -> None:
        self._control.send(("stop",))
        self.process.join(10)


def _kinds(queries) -> Counter:
    return Counter(q["sql"].split(None, 1)[0].upper() for q in queries)


def _step_until(watcher, done, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("the watcher did not get there in time")
        watcher.step(timeout=0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--steady-seconds", type=float, default=600.0, help="quiet steady state (default 10 min)")
    parser.add_argument(
        "--bookmark-seconds", type=float, default=60.0, help="how often the fake API sends bookmarks (a real one: ~60)"
    )
    args = parser.parse_args()

    from fleet.backends.kubernetes.backend import KubernetesClusterBackend
    from fleet.models import Cluster, Gpu, GpuNode, ModelDeployment, Pod
    from fleet.watch.lease import RENEW_SECONDS, watch_lease_hold
    from fleet.watch.watcher import ClusterWatcher
    from tests.fakekube.objects import big_cluster
    from tests.fakekube.server import write_kubeconfig

    started = time.perf_counter()
    objects = big_cluster(nodes=args.nodes, gpus_per_node=args.gpus_per_node, deployments=args.deployments)
    model_pods = [
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in objects
        if p["kind"] == "Pod" and p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    ]
    api = FakeApi(copy.deepcopy(objects), args.bookmark_seconds)
    try:
        with throwaway_database():
            kinds = Counter(o["kind"] for o in objects)
            print(
                f"fake Kubernetes API serving {len(objects)} objects "
                f"({', '.join(f'{n} {k}s' for k, n in kinds.most_common())}) "
                f"ready in {time.perf_counter() - started:.1f} s; database: {connection.vendor}"
            )
            kubeconfig = Path(tempfile.mkdtemp(prefix="scaledeck-bench-")) / "kubeconfig"
            write_kubeconfig(kubeconfig, api.url, "fake-token-0123456789")
            cluster = Cluster.objects.create(
                name="big", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(kubeconfig)
            )
            backend = KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), timeout_seconds=120)
            watcher = ClusterWatcher(cluster, backend=backend)
            _, _, bytes_before = api.ask("stats")

            # 1. The first list, applied as one full sync.
            began = time.perf_counter()
            watcher.start()
            with CaptureQueriesContext(connection) as first:
                _step_until(watcher, lambda: watcher.first_sync is not None, timeout=600)
            total = time.perf_counter() - began
            database = watcher.first_sync.duration_ms / 1000
            first_kinds = _kinds(first.captured_queries)
            statements = ", ".join(f"{n} {k}" for k, n in first_kinds.items())
            lists, _, bytes_after = api.ask("stats")
            list_bytes = bytes_after - bytes_before
            print(
                f"first list         {total:6.2f} s  (lists {watcher.first_list_seconds:5.2f} s, reading "
                f"{watcher.first_read_seconds:5.2f} s, database {database:5.2f} s)  "
                f"{sum(first_kinds.values())} SQL statements ({statements}); "
                f"{lists} list calls, {list_bytes / 1e6:.1f} MB"
            )
            print(
                f"stored: {GpuNode.objects.count()} nodes, {Gpu.objects.count()} GPUs, "
                f"{ModelDeployment.objects.count()} deployments, {Pod.objects.count()} pods"
            )

            # 2. A quiet steady state.
            time.sleep(1)  # let the watches open
            lists_before, watches_before, bytes_before = api.ask("stats")
            renewals = 0
            with CaptureQueriesContext(connection) as steady:
                ends = time.monotonic() + args.steady_seconds
                renew_at = time.monotonic()
                while time.monotonic() < ends:
                    if time.monotonic() >= renew_at:
                        watch_lease_hold(cluster_id=cluster.id, holder="bench", now=timezone.now(), synced=True)
                        renewals += 1
                        renew_at += RENEW_SECONDS
                    watcher.step(timeout=min(1.0, max(0.05, ends - time.monotonic())))
            lists_after, watches_after, bytes_after = api.ask("stats")
            minutes = args.steady_seconds / 60
            writes = [q["sql"] for q in steady.captured_queries if q["sql"].split(None, 1)[0].upper() in WRITES]
            lease_writes = [w for w in writes if '"fleet_cluster"' in w.split("SET", 1)[0]]
            per_minute = (bytes_after - bytes_before) / minutes
            relist_per_minute = list_bytes * 60 / RELIST_SECONDS
            print(
                f"steady state       {args.steady_seconds:6.0f} s: {lists_after - lists_before} list calls, "
                f"{len(writes) - len(lease_writes)} inventory writes, {len(lease_writes)} lease renewals "
                f"(1 UPDATE every {RENEW_SECONDS:g} s), {watches_after - watches_before} watch requests; "
                f"API server sent {per_minute / 1e3:.1f} kB/minute "
                f"(re-listing every {RELIST_SECONDS} s: {relist_per_minute / 1e6:.1f} MB/minute)"
            )
            if args.steady_seconds < 600:
                scale = 10 / minutes
                print(
                    f"  10 minutes at this pace: {round((lists_after - lists_before) * scale)} list calls, "
                    f"{round((len(writes) - len(lease_writes)) * scale)} inventory writes, "
                    f"{round(600 / RENEW_SECONDS)} lease renewals, {per_minute * 10 / 1e6:.2f} MB "
                    f"(re-listing: {relist_per_minute * 10 / 1e6:.0f} MB)"
                )

            # 3. One pod turns Ready.
            pod = model_pods[len(model_pods) // 2]
            api.ask("set_ready", [pod], False, 0)
            _step_until(watcher, lambda: not Pod.objects.get(cluster=cluster, namespace=pod[0], name=pod[1]).ready)
            before = len(watcher.batches)
            changed_at, _ = api.ask("set_ready", [pod], True, 0)
            _step_until(watcher, lambda: len(watcher.batches) > before)
            seen_at = time.time()
            batch = watcher.batches[-1]
            print(
                f"one pod Ready      {seen_at - changed_at:6.2f} s from its watch event to the committed row "
                f"(at most; the batch took {batch.result.duration_ms} ms): {batch.statements} SQL statements, "
                f"{batch.writes} writes, {batch.changed} row(s) changed"
            )

            # 4. 100 pods change within one second.
            pods = model_pods[:100]
            before = len(watcher.batches)
            first_change, last_change = api.ask("set_ready", pods, False, 0.8)
            _step_until(watcher, lambda: sum(b.changed for b in watcher.batches[before:]) >= len(pods))
            done_at = time.time()
            batches = watcher.batches[before:]
            print(
                f"100 pods changing  over {last_change - first_change:.2f} s: applied in {len(batches)} batch(es), "
                f"{sum(b.statements for b in batches)} SQL statements, "
                f"{done_at - last_change:.2f} s after the last change"
            )
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"watcher process peak memory: {peak:.0f} MB (the informers' caches and the first apply)")
            watcher.stop()
            backend.close()
    finally:
        api.close()


if __name__ == "__main__":
    main()
