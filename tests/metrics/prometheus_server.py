"""Start a real Prometheus (Debian's /usr/bin/prometheus) scraping the fake exporter.

The server gets its own temp dir (config + TSDB), a free 127.0.0.1 port and a 1 s scrape
interval. `start()` returns once `/-/ready` answers and every job has been scraped at least once;
`wait_for_history(seconds)` then blocks until that much data has been collected (rates over a
window are only exact once the window is full). The system service is never touched.

More scrape jobs (e.g. the per-pod targets of pod_targets.py) can be given at start
(`extra_scrape_configs`) or added to a running server with `scrape_more(configs)`, which
reloads the configuration (SIGHUP) and returns once every new target has been scraped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_BINARY = "/usr/bin/prometheus"
JOBS = ("vllm", "vllm-servicemonitor", "dcgm")
# Target labels of the ServiceMonitor-style job: they collide with the exposition's own
# namespace/pod, so Prometheus renames those to exported_namespace/exported_pod.
SERVICEMONITOR_TARGET_LABELS = {"namespace": "monitoring", "pod": "vllm-metrics-proxy-0"}


def find_binary() -> str | None:
    """SCALEDECK_PROMETHEUS_BIN, else /usr/bin/prometheus, else `prometheus` on PATH."""
    explicit = os.environ.get("SCALEDECK_PROMETHEUS_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    return shutil.which("prometheus")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_config(exporter_address: str) -> dict:
    target = {"targets": [exporter_address]}
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1m"},
        "scrape_configs": [
            {
                "job_name": "vllm",
                "honor_labels": True,
                "metrics_path": "/metrics/vllm",
                "static_configs": [target],
            },
            {
                "job_name": "vllm-servicemonitor",
                "honor_labels": False,
                "metrics_path": "/metrics/vllm-relabelled",
                "static_configs": [{**target, "labels": SERVICEMONITOR_TARGET_LABELS}],
            },
            {
                "job_name": "dcgm",
                "honor_labels": True,
                "metrics_path": "/metrics/dcgm",
                "static_configs": [target],
            },
        ],
    }


class PrometheusServer:
    def __init__(
        self,
        binary: str,
        exporter_address: str,
        workdir: str | os.PathLike | None = None,
        *,
        extra_scrape_configs: list[dict] | None = None,
    ):
        self.binary = binary
        self.exporter_address = exporter_address
        self.extra_scrape_configs: list[dict] = list(extra_scrape_configs or [])
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="scaledeck-prometheus-"))
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.first_scrape_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def _write_config(self) -> Path:
        config = scrape_config(self.exporter_address)
        config["scrape_configs"] += self.extra_scrape_configs
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def start(self, *, ready_timeout: float = 30.0) -> PrometheusServer:
        config = self._write_config()
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = free_port()
            log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 (kept open for the child)
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            try:
                self._wait_ready(ready_timeout)
                self._wait_first_scrapes(ready_timeout)
                self._wait_targets_up(self.extra_scrape_configs, ready_timeout)
                return self
            except RuntimeError as exc:
                last_error = str(exc)
                self.stop()
        raise RuntimeError(f"Prometheus did not start: {last_error}\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.workdir / "prometheus.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ waiting

    def _get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:  # noqa: S310
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def query(self, promql: str) -> list[dict]:
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if status != 200:
            raise RuntimeError(f"query {promql!r} answered HTTP {status}: {body[:200]!r}")
        return json.loads(body)["data"]["result"]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("the prometheus process exited")
            try:
                if self._get("/-/ready", timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"/-/ready did not answer 200 within {timeout} s")

    def _wait_first_scrapes(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = {r["metric"].get("job"): r["value"][1] for r in self.query("up")}
            if all(up.get(job) == "1" for job in JOBS):
                self.first_scrape_at = time.time()
                return
            time.sleep(0.2)
        raise RuntimeError(f"the exporter was not scraped by every job within {timeout} s")

    def scrape_more(self, configs: list[dict], *, timeout: float = 30.0) -> float:
        """Add scrape jobs to the running server (config reload); returns once every new target
        has been scraped, with the wall time of that moment."""
        names = {c["job_name"] for c in self.extra_scrape_configs} | set(JOBS)
        clash = [c["job_name"] for c in configs if c["job_name"] in names]
        if clash:
            raise ValueError(f"scrape jobs already configured: {clash}")
        assert self.process is not None and self.process.poll() is None, "prometheus is not running"
        self.extra_scrape_configs += configs
        self._write_config()
        self.process.send_signal(signal.SIGHUP)
        self._wait_targets_up(configs, timeout)
        return time.time()

    def _wait_targets_up(self, configs: list[dict], timeout: float) -> None:
        expected = {c["job_name"]: sum(len(sc["targets"]) for sc in c["static_configs"]) for c in configs}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up: dict[str, list[str]] = {}
            for r in self.query("up"):
                up.setdefault(r["metric"].get("job"), []).append(r["value"][1])
            if all(len(up.get(job, ())) == n and set(up[job]) == {"1"} for job, n in expected.items()):
                return
            time.sleep(0.2)
        raise RuntimeError(f"scrape targets of {sorted(expected)} were not all up within {timeout} s")

    def wait_for_samples(self, selector: str, *, count: int, within: str, timeout: float = 30.0) -> None:
        """Block until every series of `selector` holds `count` samples over the last `within`.

        A test that reads a rate over a short window needs the window full of scrapes; a fixed
        sleep gets fewer of them on a busy machine, and the rate comes out short."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = [float(r["value"][1]) for r in self.query(f"count_over_time({selector}[{within}])")]
            if counts and min(counts) >= count:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{selector} did not reach {count} samples over {within} within {timeout} s")

    def wait_for_history(self, seconds: float) -> None:
        """Block until Prometheus has scraped for at least `seconds`."""
        assert self.first_scrape_at is not None
        remaining = self.first_scrape_at + seconds - time.time()
        if remaining > 0:
            time.sleep(remaining)
