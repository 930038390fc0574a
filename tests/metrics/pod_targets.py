"""Scrape targets the way Prometheus meets vLLM and dcgm-exporter in a real cluster.

Unlike `exporter.py` (one endpoint per job, `namespace`/`pod` written into the exposition),
every vLLM pod here is its own scrape target whose exposition carries no pod labels at all,
as vLLM's own `/metrics` does: Prometheus attaches `namespace`/`pod` from the target (what
Kubernetes service discovery does). Three more shapes are served:

* a *gateway* target (a metrics proxy or federation behind a ServiceMonitor) serving several
  pods' series with `namespace`/`pod` in the exposition, scraped with `honor_labels: false` and
  target labels of its own, so Prometheus renames them to `exported_namespace`/`exported_pod`;
* one dcgm-exporter target per node (`Hostname` or the newer `hostname` label, MIG slices with
  `GPU_I_PROFILE`/`GPU_I_ID`, the pod mapping in `namespace`/`pod`), scraped with
  `honor_labels: true`;
* pods of old vLLM releases (0.7 names and bucket layouts, no `engine` label);
* kube-state-metrics (`kube_deployment_spec_replicas`, `kube_deployment_status_replicas_ready`),
  scraped with `honor_labels: true` as its ServiceMonitor does.

A pod can be removed (`remove_pods`): its endpoint then answers 404, Prometheus marks its
series stale, and only their history remains -- a pod replaced by a rollout or a scale-down.

The text follows prometheus_client's output (HELP/TYPE, `_created` samples, `le` last). Counters
grow linearly with wall time from values chosen by the test; gauges can be changed while the
server runs (`update`). Add targets, then hand `scrape_configs()` to a Prometheus.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

# vLLM >= 0.10 layouts (vllm/v1/metrics/loggers.py) and vLLM 0.7 (vllm/engine/metrics.py).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
TTFT_BUCKETS_V07 = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
               20.0, 40.0, 80.0)  # fmt: skip
ITL_BUCKETS_V07 = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
               120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
LENGTH_SHARE = 0.1  # of served requests, finished_reason="length"; the rest "stop"

Latencies = tuple[tuple[float, float], ...]  # (seconds, share of requests)


@dataclass(frozen=True)
class VllmPodTarget:
    """One vLLM pod. Counters: `*_per_second` from the moment it is added (plus `*_at_start`)."""

    namespace: str
    pod: str
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"
    release: str = "0.11"  # "0.11" (current names) or "0.7" (removed older names)
    waiting: float = 0.0
    running: float = 0.0
    kv_cache_usage: float = 0.0  # 0-1
    requests_per_second: float = 1.0
    ttft: Latencies = ((0.3, 1.0),)
    itl: Latencies = ((0.02, 1.0),)
    e2e: Latencies = ((4.0, 1.0),)
    abort_share: float = 0.0  # of finished requests, finished_reason="abort"
    preemptions_per_second: float = 0.0
    prompt_tokens_per_second: float = 0.0
    generation_tokens_per_second: float = 0.0
    generation_tokens_at_start: float = 1_000_000.0  # the pod has served before the test looks
    behind_gateway: bool = False  # served by the gateway target (exported_namespace/exported_pod)

    @property
    def old(self) -> bool:
        return self.release == "0.7"


@dataclass(frozen=True)
class DcgmDeviceTarget:
    """A whole GPU (`mig_profile` None) or one MIG slice on a node, and the pod holding it."""

    node: str
    gpu: int
    utilization: float  # 0-1, the truth
    mig_profile: str | None = None
    mig_instance: int | None = None
    namespace: str = ""
    pod: str = ""
    hostname_label: str = "Hostname"
    model_name: str = "NVIDIA A100-SXM4-80GB"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}" if pairs else ""


def _value(v: float) -> str:
    return "+Inf" if v == float("inf") else repr(float(v))


class _Family:
    def __init__(self, name: str, kind: str, help_text: str):
        self.name, self.kind, self.help = name, kind, help_text
        self.lines: list[str] = []

    def sample(self, suffix: str, labels: Sequence[tuple[str, str]], value: float) -> None:
        self.lines.append(f"{self.name}{suffix}{_labels(labels)} {_value(value)}")

    def text(self) -> str:
        return "\n".join([f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *self.lines])


class _Exposition:
    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def family(self, name: str, kind: str, help_text: str = "") -> _Family:
        return self.families.setdefault(name, _Family(name, kind, help_text or name))

    def text(self) -> str:
        return "\n".join(f.text() for f in self.families.values()) + "\n"


def share_at_or_below(latencies: Latencies, le: float) -> float:
    return sum(share for seconds, share in latencies if seconds <= le)


def _histogram(out: _Exposition, name: str, labels, latencies: Latencies, buckets, count: float, created: float):
    fam = out.family(name, "histogram")
    for le in (*buckets, float("inf")):
        fam.sample("_bucket", [*labels, ("le", _value(le))], count * share_at_or_below(latencies, le))
    fam.sample("_count", labels, count)
    fam.sample("_sum", labels, count * sum(s * share for s, share in latencies))
    fam.sample("_created", labels, created)


def vllm_exposition(pods: Sequence[VllmPodTarget], elapsed: dict[str, float], created: float,
                    *, with_pod_labels: bool) -> str:  # fmt: skip
    out = _Exposition()
    for p in pods:
        seconds = elapsed[p.pod]
        labels: list[tuple[str, str]] = [] if p.old else [("engine", "0")]
        labels.append(("model_name", p.model_name))
        if with_pod_labels:
            labels += [("namespace", p.namespace), ("pod", p.pod)]
        requests = p.requests_per_second * seconds + 10_000
        out.family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.").sample(
            "", labels, p.running
        )
        out.family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.").sample(
            "", labels, p.waiting
        )
        kv = "vllm:gpu_cache_usage_perc" if p.old else "vllm:kv_cache_usage_perc"
        out.family(kv, "gauge", "KV-cache usage. 1 means 100 percent usage.").sample("", labels, p.kv_cache_usage)
        for name, total in (
            ("vllm:prompt_tokens", p.prompt_tokens_per_second * seconds + 5_000_000),
            ("vllm:generation_tokens", p.generation_tokens_per_second * seconds + p.generation_tokens_at_start),
        ):
            fam = out.family(name, "counter", "Number of tokens processed.")
            fam.sample("_total", labels, total)
            fam.sample("_created", labels, created)
        _histogram(out, "vllm:time_to_first_token_seconds", labels, p.ttft,
                   TTFT_BUCKETS_V07 if p.old else TTFT_BUCKETS, requests, created)  # fmt: skip
        itl = "vllm:time_per_output_token_seconds" if p.old else "vllm:inter_token_latency_seconds"
        _histogram(out, itl, labels, p.itl, ITL_BUCKETS_V07 if p.old else ITL_BUCKETS, requests * 200, created)
        _histogram(out, "vllm:e2e_request_latency_seconds", labels, p.e2e, E2E_BUCKETS, requests, created)
        served = 1.0 - p.abort_share
        finished = out.family("vllm:request_success", "counter", "Count of successfully processed requests.")
        for reason, share in (("stop", served * (1 - LENGTH_SHARE)), ("length", served * LENGTH_SHARE),
                              ("abort", p.abort_share)):  # fmt: skip
            finished.sample("_total", [*labels, ("finished_reason", reason)], requests * share)
            finished.sample("_created", [*labels, ("finished_reason", reason)], created)
        preempted = out.family("vllm:num_preemptions", "counter", "Cumulative number of preemption from the engine.")
        preempted.sample("_total", labels, p.preemptions_per_second * seconds)
        preempted.sample("_created", labels, created)
    return out.text()


def kube_state_exposition(deployments: dict[tuple[str, str], tuple[int, int]]) -> str:
    """kube-state-metrics' Deployment replica gauges: {(namespace, deployment): (desired, ready)}."""
    out = _Exposition()
    spec = out.family("kube_deployment_spec_replicas", "gauge", "Number of desired pods for a deployment.")
    ready = out.family("kube_deployment_status_replicas_ready", "gauge", "The number of ready replicas per deployment.")
    for (namespace, name), (desired, ready_count) in sorted(deployments.items()):
        labels = [("namespace", namespace), ("deployment", name)]
        spec.sample("", labels, desired)
        ready.sample("", labels, ready_count)
    return out.text()


def dcgm_exposition(devices: Sequence[DcgmDeviceTarget]) -> str:
    out = _Exposition()
    for d in devices:
        labels = [
            ("gpu", str(d.gpu)),
            ("UUID", f"GPU-{zlib.crc32(d.node.encode()):08x}-{d.gpu:04d}-4b6e-9c1f-5d2a7e3b8c10"),
            ("pci_bus_id", f"00000000:{0x10 + d.gpu:02X}:00.0"),
            ("device", f"nvidia{d.gpu}"),
            ("modelName", d.model_name),
        ]
        if d.mig_profile:
            labels += [("GPU_I_PROFILE", d.mig_profile), ("GPU_I_ID", str(d.mig_instance))]
        labels += [(d.hostname_label, d.node), ("DCGM_FI_DRIVER_VERSION", "550.127.05")]
        if d.pod:
            labels += [("container", "vllm"), ("namespace", d.namespace), ("pod", d.pod)]
        whole = d.mig_profile is None
        out.family("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).").sample(
            "", labels, round(d.utilization * 100) if whole else 0
        )
        # On a whole GPU the graphics engine is deliberately not GPU_UTIL/100, so a reader of the
        # wrong series is caught; on a MIG slice it is the only truth.
        out.family("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.").sample(
            "", labels, d.utilization * 0.6 if whole else d.utilization
        )
        out.family("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).").sample("", labels, 4096)
        out.family("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).").sample("", labels, 6144)
        if whole:
            out.family("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).").sample("", labels, 250.0)
            out.family("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).").sample("", labels, 51)
    return out.text()


class PodTargets:
    """An HTTP server with one path per scrape target. Thread-safe; add targets any time."""

    GATEWAY_PATH = "/gateway/metrics"
    KUBE_STATE_PATH = "/kube-state-metrics/metrics"
    GATEWAY_LABELS = {"namespace": "monitoring", "pod": "vllm-gateway-0"}

    def __init__(self, *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._pods: dict[str, VllmPodTarget] = {}  # by pod name
        self._added_at: dict[str, float] = {}
        self._dcgm: dict[str, list[DcgmDeviceTarget]] = {}  # by node
        self._kube_state: dict[tuple[str, str], tuple[int, int]] = {}  # (ns, deployment) -> (desired, ready)
        self._server: ThreadingHTTPServer | None = None
        self.created = clock() - 3600.0

    # ------------------------------------------------------------------ the world

    def add_pods(self, *pods: VllmPodTarget) -> None:
        with self._lock:
            for p in pods:
                if p.pod in self._pods:
                    raise ValueError(f"pod {p.pod} is already served")
                self._pods[p.pod] = p
                self._added_at[p.pod] = self._clock()

    def remove_pods(self, *names: str) -> None:
        """Stop serving the pods (404): Prometheus marks their series stale; their history stays."""
        with self._lock:
            for name in names:
                del self._pods[name]

    def set_deployment_replicas(self, namespace: str, deployment: str, *, desired: int, ready: int) -> None:
        """What kube-state-metrics reports for the Deployment from now on."""
        with self._lock:
            self._kube_state[(namespace, deployment)] = (desired, ready)

    def add_devices(self, *devices: DcgmDeviceTarget) -> None:
        with self._lock:
            for d in devices:
                self._dcgm.setdefault(d.node, []).append(d)

    def update(self, pod: str, **changes) -> None:
        """Change a pod's gauges (queue, running, KV cache) from now on."""
        with self._lock:
            self._pods[pod] = replace(self._pods[pod], **changes)

    def pod(self, name: str) -> VllmPodTarget:
        return self._pods[name]

    def elapsed(self, pod: str, at: float | None = None) -> float:
        """Seconds the pod's counters have grown for, at wall time `at` (now)."""
        return (self._clock() if at is None else at) - self._added_at[pod]

    # ------------------------------------------------------------------ Prometheus side

    @staticmethod
    def pod_path(p: VllmPodTarget) -> str:
        return f"/pods/{quote(p.namespace, safe='')}/{quote(p.pod, safe='')}/metrics"

    def scrape_configs(
        self, job_prefix: str, *, pods: Sequence[str] = (), nodes: Sequence[str] = (), kube_state: bool = False
    ) -> list[dict]:
        """Jobs for the given pods and dcgm nodes: pods as Kubernetes SD would label them, the
        gateway's pods behind its own target labels, dcgm and kube-state-metrics with
        `honor_labels: true`."""
        address = self.address
        with self._lock:
            chosen = [self._pods[name] for name in pods]
        direct = [p for p in chosen if not p.behind_gateway]
        jobs = []
        if direct:
            jobs.append({
                "job_name": f"{job_prefix}-vllm",
                "honor_labels": False,
                "static_configs": [
                    {"targets": [address],
                     "labels": {"namespace": p.namespace, "pod": p.pod, "__metrics_path__": self.pod_path(p)}}
                    for p in direct
                ],
            })  # fmt: skip
        if any(p.behind_gateway for p in chosen):
            jobs.append({
                "job_name": f"{job_prefix}-gateway",
                "honor_labels": False,
                "metrics_path": self.GATEWAY_PATH,
                "static_configs": [{"targets": [address], "labels": dict(self.GATEWAY_LABELS)}],
            })  # fmt: skip
        if nodes:
            jobs.append({
                "job_name": f"{job_prefix}-dcgm",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [address],
                     "labels": {"namespace": "gpu-operator", "pod": f"nvidia-dcgm-exporter-{node}",
                                "__metrics_path__": f"/dcgm/{quote(node, safe='')}/metrics"}}
                    for node in nodes
                ],
            })  # fmt: skip
        if kube_state:
            jobs.append({
                "job_name": f"{job_prefix}-kube-state-metrics",
                "honor_labels": True,
                "metrics_path": self.KUBE_STATE_PATH,
                "static_configs": [{"targets": [address],
                                    "labels": {"namespace": "monitoring", "pod": "kube-state-metrics-0"}}],
            })  # fmt: skip
        return jobs

    # ------------------------------------------------------------------ HTTP

    def render(self, path: str) -> str | None:
        now = self._clock()
        with self._lock:
            if path == self.KUBE_STATE_PATH:
                return kube_state_exposition(self._kube_state)
            if path == self.GATEWAY_PATH:
                pods = [p for p in self._pods.values() if p.behind_gateway]
                return vllm_exposition(pods, {p.pod: now - self._added_at[p.pod] for p in pods}, self.created,
                                       with_pod_labels=True)  # fmt: skip
            for p in self._pods.values():
                if not p.behind_gateway and path == self.pod_path(p):
                    return vllm_exposition([p], {p.pod: now - self._added_at[p.pod]}, self.created,
                                           with_pod_labels=False)  # fmt: skip
            for node, devices in self._dcgm.items():
                if path == f"/dcgm/{quote(node, safe='')}/metrics":
                    return dcgm_exposition(devices)
        return None

    @property
    def address(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> PodTargets:
        targets = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                body = targets.render(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="pod-targets", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
