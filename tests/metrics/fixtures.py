"""Pytest fixtures for tests against a real Prometheus (imported into tests/conftest.py).

`exporter` (session): the fake vLLM + DCGM exporter (tests/metrics/exporter.py), started.
`prometheus_server` (session): a real Prometheus scraping it every second, ready and scraped once
by every job; `.url`, `.wait_for_history(seconds)`, `.query(promql)`, `.first_scrape_at`.
`pod_targets` (session): per-pod vLLM and per-node dcgm-exporter scrape targets
(tests/metrics/pod_targets.py), started empty; a test adds its pods, then hands
`pod_targets.scrape_configs(...)` to `prometheus_server.scrape_more(...)`.

Without a prometheus binary the tests that use `prometheus_server` are skipped -- or fail when
SCALEDECK_REQUIRE_SERVICES=1 (CI), so a missing service never passes silently.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.metrics.exporter import Exporter
from tests.metrics.pod_targets import PodTargets
from tests.metrics.prometheus_server import PrometheusServer, find_binary
from tests.services import missing_service

__all__ = ["exporter", "pod_targets", "prometheus_server"]

MISSING_BINARY = "prometheus binary not found: apt-get install prometheus"


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    exp = Exporter().start()
    try:
        yield exp
    finally:
        exp.stop()


@pytest.fixture(scope="session")
def prometheus_server(exporter: Exporter) -> Iterator[PrometheusServer]:
    binary = find_binary()
    if binary is None:
        missing_service(MISSING_BINARY)
    server = PrometheusServer(binary, exporter.address).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pod_targets() -> Iterator[PodTargets]:
    targets = PodTargets().start()
    try:
        yield targets
    finally:
        targets.stop()
