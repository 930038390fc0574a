"""The backends' declared contracts, read from the code.

Callers talk to a cluster and to its metrics only through the protocols of fleet/backends/base.py,
so every backend must implement every member of its protocol with the same parameters (nothing is
probed with hasattr), and each client library stays inside its own package.
"""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from fleet.backends.base import ClusterBackend, MetricsBackend, WatchLease
from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.backends.prometheus.backend import PrometheusMetricsBackend
from fleet.backends.registry import UnavailableMetricsBackend
from fleet.backends.simulated.cluster import SimulatedClusterBackend
from fleet.backends.simulated.metrics import SimulatedMetricsBackend
from fleet.backends.simulated.store import InMemoryWorldStore
from simulator import demo_world
from tests.source_files import NOT_SOURCE, parse_source

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def protocol_members(protocol: type) -> tuple[dict[str, inspect.Signature], set[str]]:
    """(methods with their signatures, data attributes) a protocol declares, its bases' included."""
    methods: dict[str, inspect.Signature] = {}
    attributes: set[str] = set()
    for cls in reversed(protocol.__mro__):
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        attributes.update(name for name in cls.__dict__.get("__annotations__", {}) if not name.startswith("_"))
        for name, value in vars(cls).items():
            if inspect.isfunction(value) and not name.startswith("_"):
                methods[name] = inspect.signature(value)
    return methods, attributes


def accepts(implemented: inspect.Signature, declared: inspect.Signature) -> bool:
    """Whether every call the protocol allows is a call the implementation takes: the same
    positional parameters in order, every keyword-only one by name, anything more with a default."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    declared_positional = [(p.name, p.kind) for p in declared.parameters.values() if p.kind in positional]
    have = implemented.parameters
    have_positional = [(p.name, p.kind) for p in have.values() if p.kind in positional]
    if have_positional[: len(declared_positional)] != declared_positional:
        return False
    keywords = [p.name for p in declared.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    if any(name not in have or have[name].kind is inspect.Parameter.POSITIONAL_ONLY for name in keywords):
        return False
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return all(
        p.default is not inspect.Parameter.empty or p.kind in variadic
        for name, p in have.items()
        if name not in declared.parameters
    )


def contract_breaches(protocol: type, backend: object) -> list[str]:
    methods, attributes = protocol_members(protocol)
    breaches = [f"no attribute {name}" for name in sorted(attributes) if not hasattr(backend, name)]
    for name, declared in methods.items():
        implemented = getattr(type(backend), name, None)
        if not callable(implemented):
            breaches.append(f"no method {name}")
        elif not accepts(inspect.signature(implemented), declared):
            breaches.append(f"{name}{inspect.signature(implemented)} does not take {name}{declared}")
    return breaches


def simulated_store() -> InMemoryWorldStore:
    return InMemoryWorldStore(demo_world(seed=3, now=NOW, warmup_hours=0.1))


CLUSTER_BACKENDS = {
    "kubernetes": lambda: KubernetesClusterBackend(),
    "simulated": lambda: SimulatedClusterBackend(simulated_store(), clock=lambda: NOW),
}
METRICS_BACKENDS = {
    "prometheus": lambda: PrometheusMetricsBackend(url="http://prometheus.invalid:9090"),
    "simulated": lambda: SimulatedMetricsBackend(simulated_store(), clock=lambda: NOW),
    "unavailable": lambda: UnavailableMetricsBackend("no Prometheus URL configured for this cluster"),
}


@pytest.mark.parametrize("name", sorted(CLUSTER_BACKENDS))
def test_each_cluster_backend_implements_the_whole_protocol(name):
    backend = CLUSTER_BACKENDS[name]()
    assert contract_breaches(ClusterBackend, backend) == []
    assert isinstance(backend, ClusterBackend)


def test_the_kubernetes_backend_holds_an_in_cluster_watchers_lease():
    assert contract_breaches(WatchLease, KubernetesClusterBackend()) == []


@pytest.mark.parametrize("name", sorted(METRICS_BACKENDS))
def test_each_metrics_backend_implements_the_whole_protocol(name):
    backend = METRICS_BACKENDS[name]()
    try:
        assert contract_breaches(MetricsBackend, backend) == []
        assert backend.last_error is None  # nothing has failed yet
    finally:
        backend.close()


def test_the_protocols_declare_what_the_callers_use():
    cluster_methods, _ = protocol_members(ClusterBackend)
    metrics_methods, metrics_attributes = protocol_members(MetricsBackend)
    assert {
        "snapshot",
        "last_warnings",
        "gpu_assignments",
        "scaling_events",
        "read_object",
        "scale_deployment",
        "read_autoscaler_spec",
        "patch_autoscaler_spec",
        "get_node",
        "evict_pod",
    } <= set(cluster_methods)
    assert {"deployment_metrics", "token_increase", "deployment_history", "alert_signals", "close"} <= set(
        metrics_methods
    )
    assert metrics_attributes == {"last_error"}


def test_a_backend_missing_a_method_or_a_parameter_is_caught():
    class Partial(UnavailableMetricsBackend):
        token_increase = None

        def deployment_history(self, ref, *, start, end):  # no step_seconds
            return {}

    breaches = contract_breaches(MetricsBackend, Partial("gone"))
    assert breaches[0] == "no method token_increase"
    assert breaches[1].startswith("deployment_history(self, ref, *, start, end) does not take")


def importers(library: str) -> list[str]:
    """Every first-party module (tests and benches aside) that imports `library` or a part of it."""
    found = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {"tests", "bench", *NOT_SOURCE} or relative.parts[0].startswith("."):
            continue
        for node in ast.walk(parse_source(path.read_text(encoding="utf-8"), str(relative))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(name == library or name.startswith(f"{library}.") for name in names):
                found.append(relative.as_posix())
    return sorted(set(found))


@pytest.mark.parametrize(
    ("library", "package"),
    [
        ("kubernetes", "fleet/backends/kubernetes/"),
        ("prometheus_api_client", "fleet/backends/prometheus/"),
    ],
)
def test_only_its_backend_package_imports_a_client_library(library, package):
    found = importers(library)
    assert found, f"nothing imports {library}: the scan is broken"
    assert [path for path in found if not path.startswith(package)] == []


def test_no_backend_module_is_over_500_lines():
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "fleet" / "backends").rglob("*.py")
    }
    assert {path: n for path, n in lengths.items() if n > 500} == {}
