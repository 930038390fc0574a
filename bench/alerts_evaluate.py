"""How long one alert evaluation of a big cluster takes ScaleDeck, and how many queries it sends.

500 vLLM deployments (2 pods each) and 2,000 GPU nodes in one cluster. Prometheus is a local
HTTP server answering the Prometheus API from answers built up front (so its own time is near
zero and is measured and printed separately): the figure is ScaleDeck's time -- the HTTP
client, JSON parsing, the rules, and the database work of opening, keeping and resolving
alerts. Pass 1 opens alerts for the 10 % of deployments burning their budget and the 5 % of
nodes running hot; pass 2 is the steady state (nothing changes); pass 3 resolves them all.
Target (issue 12 item 9): one batch of Prometheus queries per cluster, under 1 s per cluster.

    .venv/bin/python bench/alerts_evaluate.py

Not a test; uses a throwaway database (see bench/_django.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._django import setup_django, throwaway_database  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from fleet.backends.prometheus import alert_promql, promql  # noqa: E402
from fleet.models import Cluster, GpuNode, ModelDeployment  # noqa: E402
from scaling.alerts.evaluation import PassResult, cluster_alerts_evaluate  # noqa: E402

DEPLOYMENTS = 500
NODES = 2000
NS_LABEL, DEP = "namespace", alert_promql.ALERT_DEPLOYMENT_LABEL


def _vector(rows: list[tuple[dict, float]]) -> bytes:
    now = time.time()
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [now, repr(v)]} for m, v in rows]}}).encode()  # fmt: skip


def _hours(deps: list[tuple[str, str]], end: float) -> bytes:
    """The clock hours' counted minutes (60 each, 3 of them slow) of every deployment, as a matrix."""
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {NS_LABEL: ns, DEP: name}, "values": [[end, "60"]]} for ns, name in deps]}}).encode()  # fmt: skip


def answers(burning: bool) -> dict[str, bytes]:
    deps = [(f"team-{i % 25}", f"model-{i}") for i in range(DEPLOYMENTS)]
    slow = {d for i, d in enumerate(deps) if burning and i % 10 == 0}
    # Share of minutes whose p95 TTFT missed the objective: 30 % for the burning tenth.
    ttft = [({NS_LABEL: ns, DEP: name}, 0.3 if (ns, name) in slow else 0.0) for ns, name in deps]
    finished = [({NS_LABEL: ns, DEP: name, "finished_reason": r}, v) for ns, name in deps
                for r, v in (("stop", 9.0), ("length", 1.0), ("abort", 0.01))]  # fmt: skip
    per_dep = [({NS_LABEL: ns, DEP: name}, 0.5) for ns, name in deps]
    node = [{"Hostname": f"gpu-node-{i}", "modelName": "NVIDIA A100-SXM4-80GB"} for i in range(NODES)]
    hot = {i for i in range(NODES) if burning and i % 20 == 0}
    return {
        "ttft": _vector(ttft),
        "finished": _vector(finished),
        "per_dep": _vector(per_dep),
        "util": _vector([(n, 50.0) for n in node]),
        "fb": _vector([(n, 0.5) for n in node]),
        "temp": _vector([(n, 90.0 if i in hot else 60.0) for i, n in enumerate(node)]),
        "power": _vector([(n, 300.0) for n in node]),
        "mem_copy": _vector([(n, 40.0) for n in node]),
        "empty": _vector([]),
        "hours": _hours(deps, time.time() // 3600 * 3600),
    }


class FakePrometheusApi:
    """Answers /api/v1/query by which catalogue query it is; counts queries and handler time."""

    def __init__(self) -> None:
        self.queries = 0
        self.handler_seconds = 0.0
        self.canned = answers(burning=True)
        self._lock = threading.Lock()

    def pick(self, query: str) -> bytes:
        if "time_to_first_token_seconds_bucket" in query:
            assert '"2.5"' in query and '"1.0"' in query, query  # only the buckets around the 2 s objective
            return self.canned["ttft"]
        if promql.VLLM_REQUESTS_FINISHED in query:
            return self.canned["finished"]
        if promql.VLLM_KV_CACHE in query or promql.VLLM_WAITING in query:
            return self.canned["per_dep"]
        if promql.DCGM_GPU_UTIL in query:
            return self.canned["util"]
        if alert_promql.DCGM_FB_FREE in query:
            return self.canned["fb"]
        if promql.DCGM_TEMP in query:
            return self.canned["temp"]
        if alert_promql.DCGM_POWER_LIMIT in query:
            return self.canned["empty"]
        if alert_promql.DCGM_MEM_COPY_UTIL in query:
            return self.canned["mem_copy"]
        if promql.DCGM_POWER in query:
            return self.canned["power"]
        return self.canned["empty"]

    def start(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, query: str, body: bytes | None = None) -> None:
                started = time.perf_counter()
                body = body if body is not None else api.pick(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with api._lock:
                    api.queries += 1
                    api.handler_seconds += time.perf_counter() - started

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path.endswith("/query_range"):  # the 30-day budget's stored hours: once an hour
                    self._answer("", body=api.canned["hours"])
                    return
                self._answer(parse_qs(url.query).get("query", [""])[0])

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if self.path.split("?")[0].endswith("/query_range"):
                    self._answer("", body=api.canned["hours"])
                    return
                self._answer(form.get("query", [""])[0])

            def log_message(self, *args) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    api = FakePrometheusApi()
    url = api.start()
    with throwaway_database():
        cluster = Cluster.objects.create(name="big", backend=Cluster.Backend.KUBERNETES, prometheus_url=url,
                                         prometheus_timeout_seconds=10.0)  # fmt: skip
        ModelDeployment.objects.bulk_create(
            ModelDeployment(cluster=cluster, namespace=f"team-{i % 25}", name=f"model-{i}", replicas_desired=2)
            for i in range(DEPLOYMENTS)
        )
        GpuNode.objects.bulk_create(GpuNode(cluster=cluster, name=f"gpu-node-{i}", gpu_count=8) for i in range(NODES))
        print(f"{DEPLOYMENTS} deployments, {NODES} GPU nodes in one cluster; Prometheus answers from memory")
        for label, burning in (("pass 1 (opens alerts)", True), ("pass 2 (steady state)", True),
                               ("pass 3 (all recover)", False)):  # fmt: skip
            api.canned = answers(burning=burning)
            api.queries, api.handler_seconds = 0, 0.0
            result = PassResult()
            with CaptureQueriesContext(connection) as db:
                started, cpu_started = time.perf_counter(), time.process_time()
                cluster_alerts_evaluate(cluster=Cluster.objects.get(id=cluster.id), now=timezone.now(), result=result)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            # CPU time of this process (the stand-in's handlers excluded) is ScaleDeck's own time even on
            # a machine whose other work stretches the wall clock.
            own = cpu - api.handler_seconds
            verdict = "ok" if own < 1.0 else "OVER the 1 s target"
            print(f"{label}: {seconds * 1000:.0f} ms wall, {api.handler_seconds * 1000:.0f} ms in the Prometheus "
                  f"stand-in, ScaleDeck {own * 1000:.0f} ms of CPU ({verdict}); {api.queries} Prometheus queries, "
                  f"{len(db.captured_queries)} SQL queries; opened {len(result.opened)}, "
                  f"resolved {len(result.resolved)}")  # fmt: skip


if __name__ == "__main__":
    main()
