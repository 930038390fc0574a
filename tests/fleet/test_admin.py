"""The admin refuses what cluster_add and the deployment page refuse: same checks, same words."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.test import Client

from fleet.models import Cluster
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(UserFactory(role="", is_staff=True, is_superuser=True))
    return client


def cluster_form(cluster: Cluster, **changes) -> dict:
    data = {
        "name": cluster.name,
        "backend": cluster.backend,
        "namespaces": '["llm"]',
        "region": "",
        "kubeconfig_path": cluster.kubeconfig_path,
        "kube_context": "",
        "request_timeout_seconds": "10",
        "prometheus_url": "",
        "prometheus_bearer_token_file": "",
        "prometheus_basic_auth_user": "",
        "prometheus_basic_auth_password_file": "",
        "prometheus_timeout_seconds": "3",
        "prometheus_namespace_label": "namespace",
        "prometheus_pod_label": "pod",
        "prometheus_gpu_namespace_label": "namespace",
        "prometheus_gpu_pod_label": "pod",
    }
    return {**data, **changes}


@pytest.fixture
def cluster(settings, tmp_path) -> Cluster:
    # Inside DATA_DIR (where kubeconfigs may be read from), named for this test: tests run in parallel.
    kubeconfig = settings.DATA_DIR / f"test-admin-kubeconfig-{uuid.uuid4().hex}"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    yield ClusterFactory(name="prod", kubeconfig_path=str(kubeconfig), namespaces=["llm"])
    kubeconfig.unlink()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"prometheus_url": "http://prometheus:9090", "prometheus_bearer_token_file": "/etc/passwd"},
            "the Prometheus token file /etc/passwd is outside the folders ScaleDeck reads secrets from",
        ),
        ({"kubeconfig_path": "/etc/passwd"}, "kubeconfig /etc/passwd is outside the folders"),
        ({"kubeconfig_path": ""}, "a Kubernetes cluster needs --kubeconfig or --in-cluster"),
        ({"namespaces": '["Bad_NS"]'}, "is not a valid namespace name"),
        ({"prometheus_pod_label": "pod-name"}, "is not a Prometheus label name"),
        ({"prometheus_timeout_seconds": "0"}, "must be between 0 and 60 s"),
        ({"request_timeout_seconds": "1e9"}, "the Kubernetes request timeout must be above 0 and at most 300 s"),
    ],
)
def test_it_refuses_a_cluster_change_cluster_add_would_refuse(admin_client, cluster, changes, message):
    response = admin_client.post(f"/admin/fleet/cluster/{cluster.id}/change/", cluster_form(cluster, **changes))

    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.prometheus_bearer_token_file == "" and cluster.namespaces == ["llm"]
    assert Path(cluster.kubeconfig_path).name.startswith("test-admin-kubeconfig-")


def test_it_saves_a_cluster_change_that_passes_the_checks(admin_client, cluster):
    response = admin_client.post(
        f"/admin/fleet/cluster/{cluster.id}/change/", cluster_form(cluster, namespaces='["llm", "team-a", "llm"]')
    )

    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.namespaces == ["llm", "team-a"]


@pytest.mark.parametrize("value", ["0", "0.0001", "601"])
def test_it_refuses_a_ttft_objective_outside_1_ms_to_600_s(admin_client, value):
    deployment = ModelDeploymentFactory(ttft_slo_seconds=2.0)

    response = admin_client.post(f"/admin/fleet/modeldeployment/{deployment.id}/change/", {"ttft_slo_seconds": value})

    assert response.status_code == 200
    assert "a TTFT objective must be between 1 ms and 600 s" in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 2.0


def test_it_audits_a_ttft_objective_changed_in_the_admin(admin_client):
    from fleet.models import SloChange

    deployment = ModelDeploymentFactory(ttft_slo_seconds=2.0)

    refused = admin_client.post(f"/admin/fleet/modeldeployment/{deployment.id}/change/", {"ttft_slo_seconds": "4"})
    saved = admin_client.post(
        f"/admin/fleet/modeldeployment/{deployment.id}/change/", {"ttft_slo_seconds": "4", "reason": "new tier"}
    )

    assert refused.status_code == 200 and saved.status_code == 302
    change = SloChange.objects.get()
    assert (change.before_seconds, change.after_seconds, change.reason) == (2.0, 4.0, "new tier")
    deployment.refresh_from_db()
    assert deployment.ttft_slo_seconds == 4.0
