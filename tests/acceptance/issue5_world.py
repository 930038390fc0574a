"""Issue 5's acceptance world: a KEDA-scaled, an HPA-scaled and a plain vLLM deployment (plus KEDA's
own HPA, a deployment fought over by an HPA and a ScaledObject, and a GPU ResourceQuota), registered
and synced with manage.py, and the bots' clients that act on it through the REST API.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime

import time_machine
from django.core.management import call_command
from django.test import Client

from costing.catalog import price_catalog_seed
from fleet.models import ModelDeployment
from tests.fakekube import objects as k
from tests.fakekube.server import FakeKubeApi

NS = "llm"
MERGE_PATCH = "application/merge-patch+json"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"

KEDA_PATH = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/llama-8b"
KEDA_HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/keda-hpa-llama-8b"
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/mistral-7b-hpa"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/qwen-7b/scale"


def _with_pods(deploy: dict, node: str = "h100-a") -> list[dict]:
    rs = k.replicaset(deploy)
    ready = deploy["status"]["readyReplicas"]
    return [deploy, rs, *k.pods_of(deploy, rs, [("ready", node, "")] * ready)]


def _vllm(name: str, replicas: int) -> dict:
    return k.deployment(
        NS, name, containers=[k.vllm_container(model=f"org/{name}", gpus=1)], replicas=replicas, ready=replicas
    )


def issue5_world() -> list[dict]:
    """One H100 node (8 GPUs, p5.48xlarge on-demand) running, in namespace llm, one GPU per replica:

    - llama-8b: 2 replicas, KEDA ScaledObject llama-8b (min 1, max 8) and KEDA's keda-hpa-llama-8b;
    - mistral-7b: 2 replicas, HPA mistral-7b-hpa (min 2, max 6);
    - qwen-7b: 1 replica, no autoscaler;
    - phi-3: 1 replica, both HPA phi-3-cpu and ScaledObject phi-3 (a conflict);
    - ResourceQuota gpu-quota: requests.nvidia.com/gpu 12 hard, 6 used.
    """
    llama = _vllm("llama-8b", 2)
    so = k.scaled_object(NS, "llama-8b", target="llama-8b", min_replicas=1, max_replicas=8)
    mistral = _vllm("mistral-7b", 2)
    qwen = _vllm("qwen-7b", 1)
    phi = _vllm("phi-3", 1)
    return [
        k.gpu_node("h100-a"),
        *_with_pods(llama),
        so,
        k.keda_hpa(so),
        *_with_pods(mistral),
        k.hpa(NS, "mistral-7b-hpa", target="mistral-7b", min_replicas=2, max_replicas=6),
        *_with_pods(qwen),
        *_with_pods(phi),
        k.hpa(NS, "phi-3-cpu", target="phi-3", min_replicas=1, max_replicas=3),
        k.scaled_object(NS, "phi-3", target="phi-3", min_replicas=1, max_replicas=4),
        k.resource_quota(
            NS, "gpu-quota", hard={"requests.nvidia.com/gpu": "12"}, used={"requests.nvidia.com/gpu": "6"}
        ),
    ]


def manage(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def token_for(user: str, role: str) -> str:
    return manage("apitoken_create", "--user", user, "--role", role, "--name", f"{user}-bot").strip().splitlines()[-1]


@dataclass
class Setup:
    kube: FakeKubeApi
    operator: Client
    viewer: Client
    anonymous: Client
    ids: dict[str, int]

    def scale(self, name: str, body: object, *, client: Client | None = None, raw: str | None = None, **headers):
        data = raw if raw is not None else json.dumps(body)
        return (client or self.operator).post(
            f"/api/v1/deployments/{self.ids[name]}/scale/", data, content_type="application/json", **headers
        )

    def writes(self) -> list:
        return [r for r in self.kube.requests if r.method != "GET"]

    def patches_to(self, path: str) -> list:
        return [r for r in self.kube.requests if r.method == "PATCH" and r.path == path]

    def rv(self, kind: str, name: str) -> str:
        return self.kube.get(kind, NS, name)["metadata"]["resourceVersion"]


def bot_client(token: str | None) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}") if token else Client()


def issue5_setup(fake_kube: FakeKubeApi, fake_kubeconfig) -> Setup:
    """The issue 5 world loaded into the fake API, registered, synced, and two bots' clients."""
    price_catalog_seed()  # what the costing migration loads; tests run without migrations
    fake_kube.load(issue5_world())
    manage("cluster_add", "prod", "--kubeconfig", str(fake_kubeconfig), "--namespaces", NS)
    manage("cluster_sync", "prod")
    ids = dict(ModelDeployment.objects.filter(cluster__name="prod").values_list("name", "id"))
    assert set(ids) == {"llama-8b", "mistral-7b", "qwen-7b", "phi-3"}, ids
    operator = bot_client(token_for("olga", "operator"))
    viewer = bot_client(token_for("victor", "viewer"))
    fake_kube.clear_requests()
    return Setup(kube=fake_kube, operator=operator, viewer=viewer, anonymous=Client(), ids=ids)


def action(setup: Setup, action_id: int) -> dict:
    response = setup.viewer.get(f"/api/v1/actions/{action_id}/")
    assert response.status_code == 200, response.content
    return response.json()


def rule(setup: Setup, name: str, cron: str, floor: int, minutes: int, client: Client | None = None):
    return (client or setup.operator).post(
        "/api/v1/prescale-rules/",
        {
            "deployment": setup.ids[name],
            "cron": cron,
            "timezone": "UTC",
            "min_replicas": floor,
            "duration_minutes": minutes,
        },
        content_type="application/json",
    )


def tick_at(when: datetime) -> str:
    with time_machine.travel(when, tick=False):
        return manage("scaling_tick")
