"""The doctor on a cluster read through the Kubernetes API (the fake API over HTTP): tolerations,
anti-affinity, the preStop hook, --dtype and --quantization come from the pod templates, so each
mistake a template carries is found, and nothing on the clean one."""

from __future__ import annotations

import copy

import pytest

from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.models import Cluster, ModelDeployment
from fleet.sync import cluster_sync
from mig.doctor_selectors import finding_rows
from tests.fakekube import objects as k8s

pytestmark = pytest.mark.django_db
TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
ANTI_AFFINITY = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "llama-70b"}}, "topologyKey": "kubernetes.io/hostname"}
        ]
    }
}


def llama(name: str, *, clean: bool) -> dict:
    container = k8s.vllm_container(
        model="meta-llama/Llama-3.1-70B-Instruct-AWQ",
        tp=2,
        liveness_delay=1200,
        readiness_delay=60,
        extra_args=["--dtype", "float16", "--quantization=AWQ"],
    )
    if clean:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 540"]}}}
    deployment = k8s.deployment(
        "llm",
        name,
        containers=[container],
        replicas=2,
        ready=2,
        max_unavailable=0,
        max_surge=1,
        grace=600 if clean else 300,
    )
    template = deployment["spec"]["template"]["spec"]
    if clean:
        template["affinity"] = copy.deepcopy(ANTI_AFFINITY)
    else:
        template.pop("tolerations")
    return deployment


def test_the_doctor_reads_the_templates_of_a_real_cluster(fake_kube, fake_kubeconfig):
    fake_kube.load(
        [k8s.gpu_node(f"gpu-{i}", taints=[TAINT]) for i in range(3)]
        + [llama("llama-clean", clean=True), llama("llama-sloppy", clean=False)]
    )
    cluster = Cluster.objects.create(
        name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(fake_kubeconfig)
    )

    result = cluster_sync(cluster=cluster, backend=KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig)))

    assert result.ok, result.error
    sloppy = ModelDeployment.objects.get(name="llama-sloppy")
    assert (sloppy.tolerates_gpu_taint, sloppy.spreads_across_nodes, sloppy.has_pre_stop) == (False, False, False)
    assert (sloppy.dtype, sloppy.quantization) == ("float16", "awq")
    clean = ModelDeployment.objects.get(name="llama-clean")
    assert (clean.tolerates_gpu_taint, clean.spreads_across_nodes, clean.has_pre_stop) == (True, True, True)
    found = {(row.deployment_name, row.kind) for row in finding_rows(cluster=cluster)}
    assert found == {
        ("llama-sloppy", "missing_gpu_toleration"),
        ("llama-sloppy", "tp_without_anti_affinity"),
        ("llama-sloppy", "termination_grace_short"),
    }
