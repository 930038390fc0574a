"""A real Prometheus holding hours of recorded history, written before it starts.

A test cannot scrape for hours, so the history is written as OpenMetrics text (timestamped
samples, as scrapes would have recorded them) into the server's storage with `promtool tsdb
create-blocks-from openmetrics`, then the server starts on that storage (it also scrapes the
fake exporter, which the history does not depend on).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.metrics.prometheus_server import PrometheusServer, find_binary
from tests.services import missing_service


def ttft_histogram(labels: str, times: Iterable[int], requests_at: Callable[[int], dict[float, float]],
                   buckets: tuple[float, ...]) -> list[str]:  # fmt: skip
    """`vllm:time_to_first_token_seconds_bucket` samples of one pod: at each time, the requests
    served since the previous sample (`requests_at(t)`: {seconds: requests}) are counted into the
    cumulative buckets (`buckets` ends with +Inf)."""
    counts = [0.0] * len(buckets)
    per_le: list[list[str]] = [[] for _ in buckets]
    for t in times:
        served = requests_at(t)
        for i, le in enumerate(buckets):
            counts[i] += sum(n for seconds, n in served.items() if seconds <= le)
            name = "+Inf" if le == float("inf") else repr(float(le))
            per_le[i].append(f'vllm:time_to_first_token_seconds_bucket{{{labels},le="{name}"}} {counts[i]} {t}')
    return [line for series in per_le for line in series]


def openmetrics(families: dict[str, tuple[str, list[str]]]) -> str:
    """{metric family: (type, sample lines)} as one OpenMetrics document."""
    out = []
    for name, (kind, lines) in families.items():
        out += [f"# TYPE {name} {kind}", *lines]
    return "\n".join([*out, "# EOF"]) + "\n"


def start_backfilled(text: str, workdir: Path, exporter_address: str) -> PrometheusServer:
    """A started Prometheus whose storage holds `text` (OpenMetrics); skipped (failed in CI)
    without prometheus and promtool."""
    binary, promtool = find_binary(), shutil.which("promtool")
    if binary is None or promtool is None:
        missing_service("prometheus and promtool are needed: apt-get install prometheus")
    source = workdir / "history.om"
    source.write_text(text)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return PrometheusServer(binary, exporter_address, workdir=workdir).start()
