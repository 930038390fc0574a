"""Fixtures for the fleet pages, API and request-time metrics, and for the Kubernetes backend tests
(`world`: the fake Kubernetes API loaded with a realistic cluster)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from fleet.backends.base import BackendError, DeploymentMetrics, DeploymentRef, GpuUtilization, Series
from tests.factories import ApiTokenFactory, UserFactory
from tests.fakekube import objects as o
from tests.fleet.kube_helpers import backend


class FakeMetricsBackend:
    """A MetricsBackend with fixed answers, recording what it was asked.

    `metrics` maps (namespace, name) to DeploymentMetrics; `series` is returned for any deployment;
    `gpus` lists GpuUtilization readings; `error` (an exception) is raised by every method.
    """

    def __init__(self):
        self.metrics: dict[tuple[str, str], DeploymentMetrics] = {}
        self.series: dict[str, Series] = {}
        self.gpus: list[GpuUtilization] = []
        self.error: Exception | None = None
        self.calls: list[tuple[str, object]] = []
        self.last_error: BackendError | None = None

    def deployment_metrics(self, refs: Sequence[DeploymentRef]):
        self.calls.append(("deployment_metrics", tuple(refs)))
        if self.error:
            raise self.error
        keys = [(r.namespace, r.name) for r in refs]
        return {key: self.metrics[key] for key in keys if key in self.metrics}

    def deployment_series(self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int):
        self.calls.append(("deployment_series", (ref, start, end, step_seconds)))
        if self.error:
            raise self.error
        return self.series

    def gpu_utilization(self, node_names: Sequence[str]):
        self.calls.append(("gpu_utilization", tuple(node_names)))
        if self.error:
            raise self.error
        return [g for g in self.gpus if g.node_name in node_names]

    # Not what these tests are about (not recorded): a source that cannot count tokens or replay.
    def token_increase(self, refs: Sequence[DeploymentRef], start: datetime, end: datetime):
        raise self.error or BackendError("this test's metrics source counts no tokens")

    def deployment_history(self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int = 60):
        raise self.error or BackendError("this test's metrics source has no history")

    def close(self) -> None:
        """Nothing to close."""


@pytest.fixture
def fake_metrics(monkeypatch) -> FakeMetricsBackend:
    """Every cluster's metrics come from one FakeMetricsBackend (fleet.metrics is the only caller)."""
    backend = FakeMetricsBackend()
    monkeypatch.setattr("fleet.metrics.metrics_backend", lambda cluster: backend)
    return backend


@pytest.fixture
def broken_metrics(fake_metrics) -> FakeMetricsBackend:
    fake_metrics.error = BackendError("Prometheus at http://prom:9090 timed out after 3 s", transient=True)
    return fake_metrics


@pytest.fixture
def viewer(db):
    return UserFactory(username="vera", role=Role.VIEWER)


@pytest.fixture
def operator(db):
    return UserFactory(username="otto", role=Role.OPERATOR)


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def api(db) -> APIClient:
    """An API client sending a viewer bot token."""
    token = ApiTokenFactory(role=Role.VIEWER, user__username="bot-owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.fixture
def world(fake_kube):
    fake_kube.load(o.realistic_cluster())
    return fake_kube


@pytest.fixture
def snap(world, fake_kubeconfig):
    return backend(fake_kubeconfig).snapshot()


@pytest.fixture
def writer(world, fake_kubeconfig):
    return backend(fake_kubeconfig, namespaces=("team-a", "team-b"))
