"""How long from a bot's scale request to the PATCH arriving at the cluster.

    .venv/bin/python bench/scale_latency.py [-n 50] [--redis redis://127.0.0.1:6379/13]

Posts N requests to `POST /api/v1/deployments/{id}/scale/` (alternating floors, so each one
writes) through Django's test client, against a KEDA ScaledObject served by the fake
Kubernetes API over real HTTP, and times each request until the fake server receives the
PATCH. Twice: with the Celery task run eagerly in the request, and, when Redis answers,
through a real `celery worker` process (on_commit -> broker -> worker -> PATCH).
Prints p50/p95/max in milliseconds. A scratch SQLite database in a temp folder; nothing else
is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(label: str, latencies: list[float], missed: int) -> None:
    if not latencies:
        print(f"{label:<28} no PATCH arrived ({missed} missed)")
        return
    ms = [x * 1000 for x in latencies]
    print(
        f"{label:<28} n={len(ms):<3} p50 {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   "
        f"max {max(ms):7.1f} ms" + (f"   ({missed} missed)" if missed else "")
    )


def redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="requests per mode (default 50)")
    parser.add_argument("--redis", default=os.environ.get("SCALEDECK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="scaledeck-bench-"))
    database = scratch / "bench.sqlite3"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SCALEDECK_DATA_DIR=str(scratch),
        DATABASE_URL=f"sqlite:///{database}",
        CELERY_BROKER_URL=args.redis,
        SCALEDECK_LOG_LEVEL="WARNING",
    )
    import django
    from django.conf import settings

    django.setup()
    # The repository keeps no migration files: build the tables straight from the models.
    from django.apps import apps
    from django.core.management import call_command

    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    # It sends more scale requests a minute than SCALEDECK_THROTTLE_SCALE allows: latency is measured, not limits.
    settings.SCALEDECK_THROTTLE_SCALE = settings.SCALEDECK_THROTTLE_WRITE = "100000/min"
    call_command("migrate", run_syncdb=True, verbosity=0)

    from django.test import Client

    from accounts.services import api_token_create, user_ensure
    from config.celery import app as celery_app
    from fleet.models import Autoscaler, Cluster, ModelDeployment
    from tests.fakekube import FakeKubeApi
    from tests.fakekube import objects as k

    api = FakeKubeApi().start()
    arrivals: list[float] = []
    arrived = threading.Condition()
    handle = api._handle

    def timed(method, raw_path, headers, body):
        if method == "PATCH":
            with arrived:
                arrivals.append(time.perf_counter())
                arrived.notify_all()
        return handle(method, raw_path, headers, body)

    api._handle = timed
    so = k.scaled_object("llm", "llama", target="llama", min_replicas=1, max_replicas=8)
    api.load(k.deployment("llm", "llama", containers=[k.vllm_container(model="meta-llama/llama")], replicas=1), so)
    cluster = Cluster.objects.create(
        name="bench",
        backend=Cluster.Backend.KUBERNETES,
        kubeconfig_path=str(api.kubeconfig(scratch / "kubeconfig")),
        kube_context="fake",
        namespaces=["llm"],
    )
    deployment = ModelDeployment.objects.create(
        cluster=cluster,
        namespace="llm",
        name="llama",
        replicas_desired=1,
        gpu_resource="nvidia.com/gpu",
        gpu_per_replica=1,
    )
    Autoscaler.objects.create(
        cluster=cluster,
        namespace="llm",
        kind="scaledobject",
        name="llama",
        target_name="llama",
        deployment=deployment,
        min_replicas=1,
        max_replicas=8,
    )
    user = user_ensure(username="bench-bot-owner", role="operator")
    _, raw = api_token_create(user=user, name="bench", role="operator")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/deployments/{deployment.id}/scale/"

    def run(label: str, timeout: float) -> None:
        latencies, missed = [], 0
        for i in range(args.n):
            body = {"replicas": 2 + i % 2 * 2, "reason": f"bench {label} {i}"}  # 2, 4, 2, 4: always a write
            with arrived:
                seen = len(arrivals)
            start = time.perf_counter()
            response = client.post(url, body, content_type="application/json")
            if response.status_code != 202:
                print(f"{label}: request {i} answered {response.status_code}: {response.content[:200]!r}")
                return
            with arrived:
                if not arrived.wait_for(lambda seen=seen: len(arrivals) > seen, timeout=timeout):
                    missed += 1
                    continue
                latencies.append(arrivals[seen] - start)
        report(label, latencies, missed)

    print(f"scale request -> PATCH at the fake Kubernetes API, {args.n} requests each")
    celery_app.conf.task_always_eager = True
    run("eager (task in the request)", timeout=5)

    if not redis_reachable(args.redis):
        print(f"{'real worker on Redis':<28} skipped: Redis is not reachable at {args.redis}")
        return 0
    celery_app.conf.task_always_eager = False  # the broker is args.redis (CELERY_BROKER_URL above)
    log = open(scratch / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{os.getpid()}@localhost",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Warm up: the first task imports Django and connects to the fake cluster.
        deadline = time.monotonic() + 60
        with arrived:
            seen = len(arrivals)
        client.post(url, {"replicas": 3, "reason": "bench warm-up"}, content_type="application/json")
        with arrived:
            ok = arrived.wait_for(lambda: len(arrivals) > seen, timeout=max(deadline - time.monotonic(), 1))
        if not ok:
            print(
                f"{'real worker on Redis':<28} the worker did not apply a warm-up action in 60 s; "
                f"see {scratch / 'worker.log'}"
            )
            return 1
        run("real worker on Redis", timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
