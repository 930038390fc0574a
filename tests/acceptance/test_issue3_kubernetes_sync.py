"""Issue 3, "How it will be checked", done as an outsider would.

A fake Kubernetes API over real HTTP serves two clusters: `realistic_cluster()` and a second,
differently shaped set of objects written here by hand (an H100 node with the all-balanced MIG
layout, an A100 node on the GPU operator's default *single* MIG strategy, a spot g5 node from an
EKS node group, a KEDA deployment pinned with paused-replicas, a deployment with no
autoscaler). Each is registered with `manage.py cluster_add` and synced with `manage.py
cluster_sync`, through `call_command` and as real `python manage.py` processes; then the read
API, called with a Bearer token from `manage.py apitoken_create`, must report exactly what the
fake serves. The expectations below are written from the objects, not from the code under test.
"""

from __future__ import annotations

import pytest

from fleet.models import Gpu, Pod
from tests.acceptance.issue3_world import (
    EDGE_DEPLOYMENTS,
    EDGE_NODES,
    PROD_DEPLOYMENTS,
    PROD_NAMESPACES,
    PROD_NODES,
    TOKEN,
    add_and_sync_prod,
    api_client,
    assert_only_reads,
    bot_token_via_command,
    command,
    manage,
    reported_deployments,
    reported_nodes,
)


@pytest.mark.django_db
def test_it_reports_exactly_what_two_clusters_serve(prod, edge, tmp_path):
    prod_kubeconfig = prod.kubeconfig(tmp_path / "prod.kubeconfig")
    edge_kubeconfig = edge.kubeconfig(tmp_path / "edge.kubeconfig")

    command("cluster_add", "prod", "--kubeconfig", str(prod_kubeconfig), "--namespaces", PROD_NAMESPACES)
    command("cluster_add", "edge", "--kubeconfig", str(edge_kubeconfig), "--namespaces", "inference")
    assert "prod: synced" in command("cluster_sync", "prod")
    assert "edge: synced" in command("cluster_sync", "edge")
    client = api_client(bot_token_via_command())

    assert reported_nodes(client, "prod") == PROD_NODES
    assert reported_deployments(client, "prod") == PROD_DEPLOYMENTS
    assert reported_nodes(client, "edge") == EDGE_NODES
    assert reported_deployments(client, "edge") == EDGE_DEPLOYMENTS
    assert_only_reads(prod)
    assert_only_reads(edge)


@pytest.mark.django_db
def test_it_lists_pods_outside_deployments_against_their_nodes(prod, tmp_path):
    add_and_sync_prod(prod, tmp_path)

    job_pod = Pod.objects.get(namespace="research", name="finetune-8b-x7k2p")
    bare_pod = Pod.objects.get(namespace="research", name="debug-gpu")
    assert (job_pod.deployment, job_pod.owner_kind, job_pod.node.name) == (None, "Job", "h100-b")
    assert (bare_pod.deployment, bare_pod.owner_kind, bare_pod.node.name) == (None, "", "aks-a100")
    assert Gpu.objects.filter(pod=job_pod).count() == 8
    assert Gpu.objects.filter(pod=bare_pod).count() == 1


def test_it_syncs_through_real_processes(prod, edge, tmp_path, transactional_db):
    for name, api, namespaces in (("prod", prod, PROD_NAMESPACES), ("edge", edge, "inference")):
        kubeconfig = api.kubeconfig(tmp_path / f"{name}.kubeconfig")
        added = manage(
            "cluster_add", name, "--kubeconfig", str(kubeconfig), "--namespaces", namespaces, tmp_path=tmp_path
        )
        assert added.returncode == 0, added.stderr
        synced = manage("cluster_sync", name, tmp_path=tmp_path)
        assert synced.returncode == 0, synced.stderr
        assert synced.stdout.startswith(f"{name}: synced in ")
        assert TOKEN not in synced.stdout + synced.stderr
    issued = manage("apitoken_create", "--user", "outsider", "--role", "viewer", tmp_path=tmp_path)
    assert issued.returncode == 0, issued.stderr
    client = api_client(issued.stdout.strip().splitlines()[-1])

    assert reported_nodes(client, "prod") == PROD_NODES
    assert reported_deployments(client, "prod") == PROD_DEPLOYMENTS
    assert reported_nodes(client, "edge") == EDGE_NODES
    assert reported_deployments(client, "edge") == EDGE_DEPLOYMENTS
    assert_only_reads(prod)
    assert_only_reads(edge)
