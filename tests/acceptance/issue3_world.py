"""Issue 3's acceptance world: the second cluster's objects, what both clusters must be reported
as (written from the objects, not from the code under test), and the outsider's tools: `manage.py`
as a process and through `call_command`, and the read API with a Bearer token.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command
from rest_framework.test import APIClient

from fleet.models import Gpu, GpuNode, MigDevice, ModelDeployment, Pod
from tests.conftest import ROOT, database_url_for_subprocess
from tests.fakekube.server import FakeKubeApi

TOKEN = "fake-token-0123456789"  # FakeKubeApi's default, and so the kubeconfig's
PROD_NAMESPACES = "team-a,team-b,research"

# --------------------------------------------------------------------------- expectations
# name -> what /api/v1/nodes/ must say about it.

PROD_NODES = {
    "h100-a": {
        "gpu_model": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "on-demand",
        "instance_type": "p5.48xlarge",
        "node_pool": "gpu-h100",
        "ready": True,
        "cordoned": False,
    },
    "h100-b": {
        "gpu_model": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "spot",
        "instance_type": "p5.48xlarge",
        "node_pool": "gpu-h100",
        "ready": True,
        "cordoned": True,
    },
    "a100-mig": {  # mixed strategy: nvidia.com/gpu capacity 0, 56 slices of 1g.10gb
        "gpu_model": "NVIDIA-A100-SXM4-80GB",
        "gpu_count": 8,
        "mig": {"config": "all-1g.10gb", "devices": {"1g.10gb": 56}},
        "capacity_type": "on-demand",
        "instance_type": "p4de.24xlarge",
        "node_pool": "a100-mig-group",
        "ready": True,
        "cordoned": False,
    },
    "gke-l4": {
        "gpu_model": "NVIDIA-L4",
        "gpu_count": 4,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "spot",
        "instance_type": "g2-standard-48",
        "node_pool": "l4-pool",
        "ready": False,
        "cordoned": False,
    },
    "aks-a100": {
        "gpu_model": "NVIDIA-A100-PCIE-80GB",
        "gpu_count": 4,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "spot",
        "instance_type": "Standard_NC96ads_A100_v4",
        "node_pool": "gpupool",
        "ready": True,
        "cordoned": False,
    },
    "cpu-1": {
        "gpu_model": "",
        "gpu_count": 0,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "on-demand",
        "instance_type": "m6i.2xlarge",
        "node_pool": "system",
        "ready": True,
        "cordoned": False,
    },
}

# (namespace, name) -> what /api/v1/deployments/ must say about it.
PROD_DEPLOYMENTS = {
    ("team-a", "llama-3-70b"): {
        "model": "meta-llama/Meta-Llama-3-70B-Instruct",
        "replicas": {"desired": 2, "ready": 1},
        "autoscaler": {
            "kind": "hpa",
            "name": "llama-3-70b",
            "min_replicas": 2,
            "max_replicas": 6,
            "paused_replicas": None,
            "conflicts": [],
        },
        "gpu": {"resource": "nvidia.com/gpu", "per_replica": 4},
    },
    ("team-b", "mistral-7b"): {  # KEDA's own keda-hpa-mistral-7b is part of the ScaledObject
        "model": "mistralai/Mistral-7B-Instruct-v0.3",
        "replicas": {"desired": 3, "ready": 1},
        "autoscaler": {
            "kind": "keda",
            "name": "mistral-7b",
            "min_replicas": 1,
            "max_replicas": 8,
            "paused_replicas": 3,
            "conflicts": [],
        },
        "gpu": {"resource": "nvidia.com/mig-1g.10gb", "per_replica": 1},
    },
    ("team-b", "qwen"): {  # an HPA and a ScaledObject on one Deployment
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "replicas": {"desired": 1, "ready": 0},
        "autoscaler": {
            "kind": "conflict",
            "name": None,
            "min_replicas": None,
            "max_replicas": None,
            "paused_replicas": None,
            "conflicts": [
                # KEDA's defaults: minReplicaCount 0, maxReplicaCount 100; the HPA's minReplicas 1.
                {"kind": "keda", "name": "qwen", "min_replicas": 0, "max_replicas": 100},
                {"kind": "hpa", "name": "qwen-cpu", "min_replicas": 1, "max_replicas": 3},
            ],
        },
        "gpu": {"resource": "nvidia.com/gpu", "per_replica": 1},
    },
}

EDGE_NODES = {
    "h100-balanced": {  # all-balanced on an H100 80GB: 2x 1g.10gb, 1x 2g.20gb, 1x 3g.40gb per GPU
        "gpu_model": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "mig": {"config": "all-balanced", "devices": {"1g.10gb": 16, "2g.20gb": 8, "3g.40gb": 8}},
        "capacity_type": "on-demand",
        "instance_type": "p5.48xlarge",
        "node_pool": None,
        "ready": True,
        "cordoned": False,
    },
    "a100-single": {  # single strategy: MIG devices are advertised as nvidia.com/gpu
        "gpu_model": "NVIDIA-A100-SXM4-80GB",
        "gpu_count": 8,
        "mig": {"config": "all-3g.40gb", "devices": {"3g.40gb": 16}},
        "capacity_type": "on-demand",
        "instance_type": "p4d.24xlarge",
        "node_pool": None,
        "ready": True,
        "cordoned": False,
    },
    "g5-spot": {
        "gpu_model": "NVIDIA-A10G",
        "gpu_count": 4,
        "mig": {"config": None, "devices": {}},
        "capacity_type": "spot",
        "instance_type": "g5.12xlarge",
        "node_pool": "g5-spot",
        "ready": True,
        "cordoned": False,
    },
}

EDGE_DEPLOYMENTS = {
    ("inference", "gemma-9b"): {
        "model": "google/gemma-2-9b-it",
        "replicas": {"desired": 2, "ready": 2},
        "autoscaler": {
            "kind": "keda",
            "name": "gemma-9b",
            "min_replicas": 1,
            "max_replicas": 4,
            "paused_replicas": 2,
            "conflicts": [],
        },
        "gpu": {"resource": "nvidia.com/mig-3g.40gb", "per_replica": 1},
    },
    ("inference", "phi-3-mini"): {
        "model": "microsoft/Phi-3-mini-4k-instruct",
        "replicas": {"desired": 1, "ready": 1},
        "autoscaler": {
            "kind": "none",
            "name": None,
            "min_replicas": None,
            "max_replicas": None,
            "paused_replicas": None,
            "conflicts": [],
        },
        "gpu": {"resource": "nvidia.com/gpu", "per_replica": 1},
    },
}


# --------------------------------------------------------------------------- the second cluster, by hand


def node(name: str, labels: dict, capacity: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "96", "memory": "1056000000Ki", "pods": "110", **capacity},
            "allocatable": {"cpu": "95690m", "memory": "1043000000Ki", "pods": "110", **capacity},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def vllm_deployment(name: str, *, command: list, args: list, resources: dict, replicas: int, ready: int) -> list:
    """The Deployment, its ReplicaSet and `ready` running pods."""
    ns, rs_name = "inference", f"{name}-5d8f7c9b6"
    container = {
        "name": "server",
        "image": "vllm/vllm-openai:v0.9.1",
        "command": command,
        "args": args,
        "resources": {"limits": resources, "requests": {**resources, "cpu": "4"}},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": 4},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
            "observedGeneration": 4,
        },
    }
    replicaset = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": {"app": name, "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": f"uid-{name}", "controller": True}
            ],
        },
        "spec": {"replicas": replicas},
    }
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{rs_name}-p{i}",
                "namespace": ns,
                "labels": {"app": name, "pod-template-hash": "5d8f7c9b6"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": rs_name,
                        "uid": f"uid-{rs_name}",
                        "controller": True,
                    }
                ],
            },
            "spec": {"nodeName": "h100-balanced" if "mig" in str(resources) else "g5-spot", "containers": [container]},
            "status": {
                "phase": "Running",
                "startTime": "2025-06-01T10:00:00Z",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "server",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": "2025-06-01T10:00:05Z"}},
                    }
                ],
            },
        }
        for i in range(ready)
    ]
    return [deployment, replicaset, *pods]


def edge_cluster() -> list[dict]:
    h100_balanced = node(
        "h100-balanced",
        {
            "node.kubernetes.io/instance-type": "p5.48xlarge",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/gpu.count": "8",
            "nvidia.com/gpu.memory": "81559",
            "nvidia.com/mig.config": "all-balanced",
            "nvidia.com/mig.config.state": "success",
            "nvidia.com/mig.strategy": "mixed",
            "nvidia.com/mig-1g.10gb.count": "16",
            "nvidia.com/mig-2g.20gb.count": "8",
            "nvidia.com/mig-3g.40gb.count": "8",
        },
        {
            "nvidia.com/gpu": "0",
            "nvidia.com/mig-1g.10gb": "16",
            "nvidia.com/mig-2g.20gb": "8",
            "nvidia.com/mig-3g.40gb": "8",
        },
    )
    # The GPU operator's default strategy: GFD overrides gpu.product/count/memory with the MIG
    # device's, and the device plugin advertises the slices as nvidia.com/gpu.
    a100_single = node(
        "a100-single",
        {
            "node.kubernetes.io/instance-type": "p4d.24xlarge",
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb",
            "nvidia.com/gpu.count": "16",
            "nvidia.com/gpu.memory": "40192",
            "nvidia.com/gpu.slices.gi": "3",
            "nvidia.com/mig.config": "all-3g.40gb",
            "nvidia.com/mig.strategy": "single",
        },
        {"nvidia.com/gpu": "16"},
    )
    g5_spot = node(
        "g5-spot",
        {
            "node.kubernetes.io/instance-type": "g5.12xlarge",
            "eks.amazonaws.com/nodegroup": "g5-spot",
            "eks.amazonaws.com/capacityType": "SPOT",
            "nvidia.com/gpu.product": "NVIDIA-A10G",
            "nvidia.com/gpu.count": "4",
            "nvidia.com/gpu.memory": "23028",
        },
        {"nvidia.com/gpu": "4"},
    )
    gemma = vllm_deployment(
        "gemma-9b",
        command=["vllm", "serve", "google/gemma-2-9b-it"],
        args=["--max-model-len", "8192"],
        resources={"nvidia.com/mig-3g.40gb": "1"},
        replicas=2,
        ready=2,
    )
    phi = vllm_deployment(
        "phi-3-mini",
        command=["python3", "-m", "vllm.entrypoints.openai.api_server"],
        args=["--model", "microsoft/Phi-3-mini-4k-instruct", "--gpu-memory-utilization", "0.9"],
        resources={"nvidia.com/gpu": "1"},
        replicas=1,
        ready=1,
    )
    gemma_so = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": "gemma-9b",
            "namespace": "inference",
            "annotations": {"autoscaling.keda.sh/paused-replicas": "2"},
        },
        "spec": {
            "scaleTargetRef": {"name": "gemma-9b"},
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "query": 'sum(vllm:num_requests_waiting{model_name="gemma"})',
                        "threshold": "8",
                    },
                }
            ],
        },
    }
    keda_hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "keda-hpa-gemma-9b",
            "namespace": "inference",
            "ownerReferences": [
                {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "name": "gemma-9b",
                    "uid": "uid-so",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gemma-9b"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "s0-prometheus"},
                        "target": {"type": "AverageValue", "averageValue": "8"},
                    },
                }
            ],
        },
    }
    return [h100_balanced, a100_single, g5_spot, *gemma, *phi, gemma_so, keda_hpa]


# --------------------------------------------------------------------------- helpers


def manage(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` in its own process, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SCALEDECK_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def add_and_sync_prod(prod: FakeKubeApi, tmp_path: Path) -> Path:
    kubeconfig = prod.kubeconfig(tmp_path / "prod.kubeconfig")
    command("cluster_add", "prod", "--kubeconfig", str(kubeconfig), "--namespaces", PROD_NAMESPACES)
    assert "prod: synced" in command("cluster_sync", "prod")
    return kubeconfig


def api_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def bot_token_via_command() -> str:
    return command("apitoken_create", "--user", "acceptance-bot", "--role", "viewer").strip().splitlines()[-1]


def get_all(client: APIClient, url: str, **params: str) -> list[dict]:
    response = client.get(url, {**params, "limit": 1000})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None
    return body["results"]


NODE_FIELDS = ("gpu_model", "gpu_count", "mig", "capacity_type", "instance_type", "node_pool", "ready", "cordoned")
DEPLOYMENT_FIELDS = ("model", "replicas", "autoscaler", "gpu")


def reported_nodes(client: APIClient, cluster: str) -> dict[str, dict]:
    rows = get_all(client, "/api/v1/nodes/", cluster=cluster)
    return {r["name"]: {f: r[f] for f in NODE_FIELDS} for r in rows}


def reported_deployments(client: APIClient, cluster: str) -> dict[tuple[str, str], dict]:
    rows = get_all(client, "/api/v1/deployments/", cluster=cluster)
    out = {}
    for r in rows:
        autoscaler = {k: v for k, v in r["autoscaler"].items() if k != "metric"}
        out[(r["namespace"], r["name"])] = {**{f: r[f] for f in DEPLOYMENT_FIELDS}, "autoscaler": autoscaler}
    return out


def assert_only_reads(api: FakeKubeApi) -> None:
    assert api.requests, "the sync sent no request at all"
    writes = [(r.method, r.path) for r in api.requests if r.method != "GET" or r.body is not None]
    assert writes == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_rows() -> list:
    """Every inventory row as it is now, to prove a failed sync touched none of them."""
    return [list(model.objects.order_by("pk").values()) for model in (GpuNode, Gpu, MigDevice, ModelDeployment, Pod)]
