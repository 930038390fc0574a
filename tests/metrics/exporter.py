"""A fake vLLM + DCGM exporter for tests against a real Prometheus.

One threading HTTP server on a free 127.0.0.1 port serves three exposition endpoints, each
scraped by its own Prometheus job (see prometheus_server.py):

* `/metrics/vllm` -- vLLM pods with `namespace`/`pod` labels in the exposition (scraped with
  `honor_labels: true`, so they stay as they are). Pods speak one of three dialects:
  "new" (vLLM >= 0.11: `vllm:kv_cache_usage_perc`, `vllm:inter_token_latency_seconds`),
  "old" (vLLM 0.7: `vllm:gpu_cache_usage_perc`, `vllm:time_per_output_token_seconds`, the
  0.7 bucket layouts) and "both" (vLLM 0.10, which exports the old and new names side by side;
  here the old ones deliberately disagree so a test can see which name was read).
* `/metrics/vllm-relabelled` -- more vLLM pods, scraped with `honor_labels: false` and target
  labels `namespace`/`pod` of their own, so Prometheus renames the exposition's labels to
  `exported_namespace`/`exported_pod` exactly as it does behind a ServiceMonitor.
* `/metrics/dcgm` -- DCGM exporter text: whole GPUs and MIG slices (`GPU_I_PROFILE`,
  `GPU_I_ID`), with `Hostname` on one node and the newer `hostname` on another, and the pod
  mapping in `namespace`/`pod` (scraped with `honor_labels: true`).

Everything moves at known rates so that the expected values are computable: gauges are constant,
counters grow linearly, and every request's latency is one of a few exact values, so the bucket
counts -- and therefore any quantile PromQL's linear interpolation gives -- follow from the spec.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Bucket layouts from data/vllm/vllm_metric_catalog_by_version.csv.
TTFT_BUCKETS_NEW = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
TTFT_BUCKETS_OLD = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0)  # fmt: skip
ITL_BUCKETS_NEW = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0, 20.0, 40.0, 80.0)  # fmt: skip
ITL_BUCKETS_OLD = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS_NEW = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                   120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
E2E_BUCKETS_OLD = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)

# Counters pretend the pod has been up this long when the exporter starts.
UPTIME_AT_START_SECONDS = 600.0

Latencies = tuple[tuple[float, float], ...]  # (latency in seconds, fraction of requests)


@dataclass(frozen=True)
class VllmPod:
    namespace: str
    pod: str
    dialect: str = "new"  # "new" | "old" | "both"
    waiting: float = 0.0
    running: float = 0.0
    kv_cache_usage: float = 0.0  # 0-1
    requests_per_second: float = 2.0
    ttft: Latencies = ((0.2, 0.5), (0.4, 0.4), (0.6, 0.1))
    itl: Latencies = ((0.02, 0.9), (0.06, 0.1))
    e2e: Latencies = ((1.2, 0.7), (3.0, 0.3))
    prompt_tokens_per_second: float = 400.0
    generation_tokens_per_second: float = 100.0
    preemptions_per_second: float = 0.0
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"
    relabelled: bool = False  # served on /metrics/vllm-relabelled
    # Seconds after the first scrape of the pod's endpoint during which the pod exposes nothing
    # (a gap in its series: Prometheus marks them stale, then they come back).
    gap: tuple[float, float] | None = None

    @property
    def ttft_buckets(self) -> tuple[float, ...]:
        return TTFT_BUCKETS_OLD if self.dialect == "old" else TTFT_BUCKETS_NEW

    @property
    def itl_buckets(self) -> tuple[float, ...]:
        return ITL_BUCKETS_OLD if self.dialect == "old" else ITL_BUCKETS_NEW

    @property
    def e2e_buckets(self) -> tuple[float, ...]:
        return E2E_BUCKETS_OLD if self.dialect == "old" else E2E_BUCKETS_NEW


@dataclass(frozen=True)
class DcgmDevice:
    node: str
    hostname_label: str  # "Hostname" (older exporters) or "hostname" (newer)
    gpu: int
    utilization: float  # the truth, 0-1
    mig_profile: str | None = None
    mig_instance: int | None = None
    namespace: str = ""  # pod mapping; "" when the device is not allocated
    pod: str = ""
    fb_used_mib: float = 1000.0
    power_watts: float | None = 200.0  # None: not exported for this entity
    temperature_c: float | None = 40.0
    model_name: str = "NVIDIA A100-SXM4-80GB"


@dataclass
class World:
    vllm: list[VllmPod] = field(default_factory=list)
    dcgm: list[DcgmDevice] = field(default_factory=list)


def default_world() -> World:
    """The fleet the integration tests query. See test_prometheus_backend.py for what each proves."""
    pods = [
        # team-a/llama: two new-style pods with different latency mixes (merged histogram).
        VllmPod("team-a", "llama-7d9f8-aaaaa", waiting=3, running=8, kv_cache_usage=0.5,
                requests_per_second=3.0, ttft=((0.2, 0.5), (0.4, 0.4), (0.6, 0.1)),
                prompt_tokens_per_second=600.0, generation_tokens_per_second=150.0,
                preemptions_per_second=0.5),
        VllmPod("team-a", "llama-7d9f8-bbbbb", waiting=5, running=6, kv_cache_usage=0.3,
                requests_per_second=1.0, ttft=((0.9, 0.6), (2.0, 0.4)),
                prompt_tokens_per_second=200.0, generation_tokens_per_second=50.0),
        # Same workload in three vLLM dialects.
        VllmPod("team-a", "qwen-new-6b7c5-ccccc", dialect="new", waiting=2, running=4, kv_cache_usage=0.4),
        VllmPod("team-a", "qwen-old-6b7c5-ddddd", dialect="old", waiting=2, running=4, kv_cache_usage=0.4),
        VllmPod("team-a", "qwen-mix-6b7c5-eeeee", dialect="both", waiting=2, running=4, kv_cache_usage=0.4),
        # A deployment on MIG slices.
        VllmPod("team-a", "mig-svc-55f4c-fffff", waiting=1, running=2, kv_cache_usage=0.2),
        # A pod whose series vanish for a while (gap in range queries).
        VllmPod("team-a", "gappy-64d5b-ggggg", waiting=7, running=1, gap=(2.0, 5.0)),
        # Untrusted names: a pod whose name holds a quote and regex metacharacters, and a
        # neighbour that an unescaped `we"ird.*` regex would also match.
        VllmPod("edge", 'we"ird.*', waiting=3, running=1),
        VllmPod("edge", 'we"ird-other', waiting=100, running=1),
        # Behind a ServiceMonitor: Prometheus turns namespace/pod into exported_namespace/exported_pod.
        VllmPod("team-b", "relab-8c9d7-hhhhh", waiting=4, running=3, kv_cache_usage=0.6, relabelled=True),
        VllmPod("team-b", "relab-8c9d7-iiiii", waiting=6, running=5, kv_cache_usage=0.2, relabelled=True),
    ]  # fmt: skip
    devices = [
        # node-b (newer exporter, `hostname`): two whole GPUs for the llama pods, one idle.
        DcgmDevice("node-b", "hostname", 0, 0.8, namespace="team-a", pod="llama-7d9f8-aaaaa",
                   fb_used_mib=70000, power_watts=350, temperature_c=65),
        DcgmDevice("node-b", "hostname", 1, 0.6, namespace="team-a", pod="llama-7d9f8-bbbbb",
                   fb_used_mib=60000, power_watts=300, temperature_c=60),
        DcgmDevice("node-b", "hostname", 2, 0.0, fb_used_mib=0, power_watts=60, temperature_c=30),
        # node-a (older exporter, `Hostname`): GPU 0 split into MIG slices, two for mig-svc.
        DcgmDevice("node-a", "Hostname", 0, 0.3, mig_profile="1g.10gb", mig_instance=7,
                   namespace="team-a", pod="mig-svc-55f4c-fffff", fb_used_mib=9000,
                   power_watts=None, temperature_c=None),
        DcgmDevice("node-a", "Hostname", 0, 0.5, mig_profile="1g.10gb", mig_instance=8,
                   namespace="team-a", pod="mig-svc-55f4c-fffff", fb_used_mib=9500,
                   power_watts=None, temperature_c=None),
        DcgmDevice("node-a", "Hostname", 0, 0.1, mig_profile="3g.40gb", mig_instance=2,
                   fb_used_mib=20000, power_watts=None, temperature_c=None),
        # node-a GPU 1: a whole GPU for the qwen-new pod.
        DcgmDevice("node-a", "Hostname", 1, 0.7, namespace="team-a", pod="qwen-new-6b7c5-ccccc",
                   fb_used_mib=50000, power_watts=250, temperature_c=55),
        # node-c: not asked for in the GPU test; must not leak into it.
        DcgmDevice("node-c", "hostname", 0, 0.9, fb_used_mib=1, power_watts=100, temperature_c=50),
    ]  # fmt: skip
    return World(vllm=pods, dcgm=devices)


# --------------------------------------------------------------------------- exposition text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _fmt(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


class _Text:
    """Collects samples grouped by metric family (the text format wants families contiguous)."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, list[str]]] = {}

    def add(self, family: str, kind: str, sample_name: str, labels: Sequence[tuple[str, str]], value: float):
        _, lines = self.families.setdefault(family, (kind, []))
        lines.append(f"{sample_name}{_labels(labels)} {_fmt(value)}")

    def render(self) -> str:
        out = []
        for family, (kind, lines) in self.families.items():
            out.append(f"# HELP {family} fake {family}")
            out.append(f"# TYPE {family} {kind}")
            out.extend(lines)
        return "\n".join(out) + "\n"


def cumulative_fraction(latencies: Latencies, le: float) -> float:
    return sum(frac for value, frac in latencies if value <= le)


def _histogram(text: _Text, family: str, labels, latencies: Latencies, buckets, requests: float):
    for le in (*buckets, float("inf")):
        count = requests * cumulative_fraction(latencies, le)
        text.add(family, "histogram", f"{family}_bucket", [*labels, ("le", _fmt(le))], count)
    text.add(family, "histogram", f"{family}_sum", labels, requests * sum(v * f for v, f in latencies))
    text.add(family, "histogram", f"{family}_count", labels, requests)


def vllm_text(pods: Sequence[VllmPod], uptime: float) -> str:
    """Exposition for `pods`, `uptime` seconds after their (pretend) start."""
    text = _Text()
    for p in pods:
        labels = [("engine", "0"), ("model_name", p.model_name), ("namespace", p.namespace), ("pod", p.pod)]
        requests = p.requests_per_second * uptime
        text.add("vllm:num_requests_running", "gauge", "vllm:num_requests_running", labels, p.running)
        text.add("vllm:num_requests_waiting", "gauge", "vllm:num_requests_waiting", labels, p.waiting)
        if p.dialect in ("new", "both"):
            text.add("vllm:kv_cache_usage_perc", "gauge", "vllm:kv_cache_usage_perc", labels, p.kv_cache_usage)
        if p.dialect == "old":
            text.add("vllm:gpu_cache_usage_perc", "gauge", "vllm:gpu_cache_usage_perc", labels, p.kv_cache_usage)
        if p.dialect == "both":  # deliberately different from the new name
            text.add("vllm:gpu_cache_usage_perc", "gauge", "vllm:gpu_cache_usage_perc", labels, 0.99)
        for family, per_second in (
            ("vllm:prompt_tokens", p.prompt_tokens_per_second),
            ("vllm:generation_tokens", p.generation_tokens_per_second),
            ("vllm:num_preemptions", p.preemptions_per_second),
        ):
            text.add(family, "counter", f"{family}_total", labels, per_second * uptime)
        _histogram(text, "vllm:time_to_first_token_seconds", labels, p.ttft, p.ttft_buckets, requests)
        if p.dialect in ("new", "both"):
            _histogram(text, "vllm:inter_token_latency_seconds", labels, p.itl, p.itl_buckets, requests)
        if p.dialect == "old":
            _histogram(text, "vllm:time_per_output_token_seconds", labels, p.itl, p.itl_buckets, requests)
        if p.dialect == "both":  # deliberately slower than the new name says
            slow = tuple((v * 10, f) for v, f in p.itl)
            _histogram(text, "vllm:time_per_output_token_seconds", labels, slow, p.itl_buckets, requests)
        _histogram(text, "vllm:e2e_request_latency_seconds", labels, p.e2e, p.e2e_buckets, requests)
    return text.render()


def dcgm_text(devices: Sequence[DcgmDevice]) -> str:
    text = _Text()
    for d in devices:
        labels = [
            ("gpu", str(d.gpu)),
            ("UUID", f"GPU-{d.node}-{d.gpu:04d}-0000-0000-000000000000"),
            ("pci_bus_id", f"00000000:{d.gpu + 16:02X}:00.0"),
            ("device", f"nvidia{d.gpu}"),
            ("modelName", d.model_name),
        ]
        if d.mig_profile is not None:
            labels += [("GPU_I_PROFILE", d.mig_profile), ("GPU_I_ID", str(d.mig_instance))]
        labels.append((d.hostname_label, d.node))
        if d.pod:
            labels += [("container", "vllm"), ("namespace", d.namespace), ("pod", d.pod)]
        labels.append(("DCGM_FI_DRIVER_VERSION", "580.105.08"))
        whole = d.mig_profile is None
        # GPU_UTIL reads 0 on a MIG slice; GR_ENGINE_ACTIVE is the slice's truth. On a whole GPU
        # GR_ENGINE_ACTIVE is deliberately not GPU_UTIL/100 so a test sees which one was read.
        text.add("DCGM_FI_DEV_GPU_UTIL", "gauge", "DCGM_FI_DEV_GPU_UTIL", labels,
                 round(d.utilization * 100) if whole else 0)  # fmt: skip
        text.add("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", labels,
                 d.utilization * 0.5 if whole else d.utilization)  # fmt: skip
        text.add("DCGM_FI_DEV_FB_USED", "gauge", "DCGM_FI_DEV_FB_USED", labels, d.fb_used_mib)
        text.add("DCGM_FI_DEV_FB_FREE", "gauge", "DCGM_FI_DEV_FB_FREE", labels, 81920 - d.fb_used_mib)
        if d.power_watts is not None:
            text.add("DCGM_FI_DEV_POWER_USAGE", "gauge", "DCGM_FI_DEV_POWER_USAGE", labels, d.power_watts)
        if d.temperature_c is not None:
            text.add("DCGM_FI_DEV_GPU_TEMP", "gauge", "DCGM_FI_DEV_GPU_TEMP", labels, d.temperature_c)
    # MIG-enabled parents export device-level readings without the pod mapping or GPU_I labels.
    parents = {(d.node, d.hostname_label, d.gpu, d.model_name) for d in devices if d.mig_profile}
    for node, hostname_label, gpu, model in sorted(parents):
        labels = [("gpu", str(gpu)), ("UUID", f"GPU-{node}-{gpu:04d}-0000-0000-000000000000"),
                  ("device", f"nvidia{gpu}"), ("modelName", model), (hostname_label, node)]  # fmt: skip
        text.add("DCGM_FI_DEV_GPU_UTIL", "gauge", "DCGM_FI_DEV_GPU_UTIL", labels, 0)
        text.add("DCGM_FI_DEV_POWER_USAGE", "gauge", "DCGM_FI_DEV_POWER_USAGE", labels, 123.0)
        text.add("DCGM_FI_DEV_GPU_TEMP", "gauge", "DCGM_FI_DEV_GPU_TEMP", labels, 44.0)
    return text.render()


# --------------------------------------------------------------------------- the server


class Exporter:
    """Serves a World. `start()`/`stop()`; `address` is host:port; `uptime()` drives counters."""

    def __init__(self, world: World | None = None, *, clock: Callable[[], float] = time.time):
        self.world = world or default_world()
        self._clock = clock
        self.started_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.scrapes: dict[str, int] = {}
        self.first_scrape_at: dict[str, float] = {}

    @property
    def address(self) -> str:
        assert self._server is not None, "exporter not started"
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def uptime(self, at: float | None = None) -> float:
        """The counters' clock: seconds since the pretend pod start, at wall time `at` (now)."""
        assert self.started_at is not None
        return UPTIME_AT_START_SECONDS + ((self._clock() if at is None else at) - self.started_at)

    @staticmethod
    def path_of(pod: VllmPod) -> str:
        return "/metrics/vllm-relabelled" if pod.relabelled else "/metrics/vllm"

    def gap_window(self, pod: VllmPod) -> tuple[float, float] | None:
        """The wall-clock [start, end) of the pod's gap, once its endpoint has been scraped."""
        first = self.first_scrape_at.get(self.path_of(pod))
        if pod.gap is None or first is None:
            return None
        return (first + pod.gap[0], first + pod.gap[1])

    def visible(self, pod: VllmPod, at: float | None = None) -> bool:
        window = self.gap_window(pod)
        if window is None:
            return True
        now = self._clock() if at is None else at
        return not (window[0] <= now < window[1])

    PATHS = ("/metrics/vllm", "/metrics/vllm-relabelled", "/metrics/dcgm")

    def render(self, path: str) -> str | None:
        """The exposition served at `path` now (None for an unknown path)."""
        if path not in self.PATHS:
            return None
        now = self._clock()
        self.first_scrape_at.setdefault(path, now)
        if path == "/metrics/vllm":
            pods = [p for p in self.world.vllm if not p.relabelled and self.visible(p, now)]
            return vllm_text(pods, self.uptime(now))
        if path == "/metrics/vllm-relabelled":
            pods = [p for p in self.world.vllm if p.relabelled and self.visible(p, now)]
            return vllm_text(pods, self.uptime(now))
        return dcgm_text(self.world.dcgm)

    def start(self) -> Exporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                body = exporter.render(path)
                if body is None:
                    self.send_error(404)
                    return
                exporter.scrapes[path] = exporter.scrapes.get(path, 0) + 1
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
        self.started_at = self._clock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-exporter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
