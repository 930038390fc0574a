"""Best-practice Kubernetes manifests for serving a model with vLLM. Pure: a spec in, dicts out.

Every choice answers one of the field guide's traps:
- GPU (or MIG slice) requests equal to limits, a toleration for the `nvidia.com/gpu` taint and a
  node affinity on the GPU model, so the pod lands where its weights fit;
- replicas of a tensor-parallel model spread over nodes (required anti-affinity): one node's
  loss takes one replica, not all;
- `maxUnavailable: 0`, `maxSurge: 1`: a rollout never drops serving capacity while the new pod
  spends minutes loading weights;
- liveness after at least twice the cold start (else the kubelet kills pods still loading),
  readiness on `/health`;
- `terminationGracePeriodSeconds: 600` and a preStop sleep, so running generations finish;
- `/dev/shm` from memory (tensor parallel exchanges through it; the 64 MiB default crashes NCCL);
- weights on a ReadWriteMany volume filled once by a Job, so a new replica does not download;
- a PodDisruptionBudget, and a KEDA ScaledObject on queue depth or an HPA on Pods metrics (queue
  and GPU utilisation) with the field guide's `behavior`.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass

import yaml

PORT = 8000
GRACE_SECONDS = 600
PRESTOP_SLEEP_SECONDS = 540  # the field guide's: in-flight requests get 9 minutes
WEIGHTS_MOUNT = "/models"
BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
    "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
}
_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class ServingSpec:
    name: str
    namespace: str
    model: str
    image: str = "vllm/vllm-openai:latest"
    replicas: int = 1
    min_replicas: int = 1
    max_replicas: int = 4
    gpu_resource: str = "nvidia.com/gpu"  # or nvidia.com/mig-3g.40gb
    gpus_per_replica: int = 1
    tensor_parallel: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    gpu_product: str = ""  # nvidia.com/gpu.product of the nodes it should run on
    cold_start_seconds: int = 120
    queue_target: int = 5  # requests waiting per replica before scaling up
    gpu_utilization_target: int = 70  # percent, for the HPA
    weights_gib: int = 100
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"


def _labels(spec: ServingSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "scaledeck",
    }


def _meta(spec: ServingSpec, name: str) -> dict:
    return {"name": name, "namespace": spec.namespace, "labels": _labels(spec)}


def _args(spec: ServingSpec) -> list[str]:
    args = ["--model", spec.model, "--port", str(PORT), "--download-dir", WEIGHTS_MOUNT]
    if spec.tensor_parallel > 1:
        args += ["--tensor-parallel-size", str(spec.tensor_parallel)]
    if spec.max_model_len:
        args += ["--max-model-len", str(spec.max_model_len)]
    if spec.gpu_memory_utilization:
        args += ["--gpu-memory-utilization", f"{spec.gpu_memory_utilization:g}"]
    return args


def weights_claim(spec: ServingSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(spec, f"{spec.name}-weights"),
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": f"{spec.weights_gib}Gi"}}},
    }


def download_job(spec: ServingSpec) -> dict:
    """Fills the weights volume once, before the Deployment's pods need it."""
    script = (
        f"from huggingface_hub import snapshot_download; snapshot_download({spec.model!r}, cache_dir={WEIGHTS_MOUNT!r})"
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, f"{spec.name}-download"),
        "spec": {
            "backoffLimit": 3,
            "template": {
                "metadata": {"labels": _labels(spec)},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "name": "download",
                            "image": spec.image,
                            "command": ["python3", "-c", script],
                            "env": [{"name": "HF_HOME", "value": WEIGHTS_MOUNT}],
                            "volumeMounts": [{"name": "weights", "mountPath": WEIGHTS_MOUNT}],
                        }
                    ],
                    "volumes": [{"name": "weights", "persistentVolumeClaim": {"claimName": f"{spec.name}-weights"}}],
                },
            },
        },
    }


def deployment(spec: ServingSpec) -> dict:
    gpus = max(spec.gpus_per_replica, 1)
    probe = {"httpGet": {"path": "/health", "port": PORT}}
    pod_spec: dict = {
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [
            {
                "name": "vllm",
                "image": spec.image,
                "args": _args(spec),
                "ports": [{"name": "http", "containerPort": PORT}],
                "env": [{"name": "HF_HOME", "value": WEIGHTS_MOUNT}],
                "resources": {
                    "requests": {spec.gpu_resource: str(gpus), "cpu": str(4 * gpus), "memory": f"{32 * gpus}Gi"},
                    "limits": {spec.gpu_resource: str(gpus), "memory": f"{32 * gpus}Gi"},
                },
                "readinessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                "livenessProbe": {
                    **probe,
                    "initialDelaySeconds": 2 * spec.cold_start_seconds,
                    "periodSeconds": 30,
                    "failureThreshold": 5,
                },
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", f"sleep {PRESTOP_SLEEP_SECONDS}"]}}},
                "volumeMounts": [
                    {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - a mount point in the pod
                    {"name": "weights", "mountPath": WEIGHTS_MOUNT},
                ],
            }
        ],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(8, 8 * gpus)}Gi"}},
            {"name": "weights", "persistentVolumeClaim": {"claimName": f"{spec.name}-weights"}},
        ],
    }
    affinity: dict = {}
    if spec.gpu_product:
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "nvidia.com/gpu.product", "operator": "In", "values": [spec.gpu_product]}
                        ]
                    }
                ]
            }
        }
    if spec.tensor_parallel > 1:
        affinity["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": _labels(spec)}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    if affinity:
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": _labels(spec)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": _labels(spec)}, "spec": pod_spec},
        },
    }


def service(spec: ServingSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec, spec.name),
        "spec": {"selector": _labels(spec), "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
    }


def disruption_budget(spec: ServingSpec) -> dict:
    """One replica down at a time (drains, node repartitioning), never all of them."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec, spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(spec)}},
    }


def queue_query(spec: ServingSpec) -> str:
    return f'sum(vllm:num_requests_waiting{{namespace="{spec.namespace}", pod=~"{re.escape(spec.name)}-.*"}})'


def scaled_object(spec: ServingSpec) -> dict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": BEHAVIOR}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": spec.prometheus_url,
                        "query": queue_query(spec),
                        "threshold": str(spec.queue_target),
                    },
                }
            ],
        },
    }


def pods_hpa(spec: ServingSpec) -> dict:
    """autoscaling/v2 on Pods metrics served by the Prometheus adapter: queue depth and GPU utilisation."""

    def pods_metric(name: str, value: int) -> dict:
        return {
            "type": "Pods",
            "pods": {"metric": {"name": name}, "target": {"type": "AverageValue", "averageValue": str(value)}},
        }

    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": max(spec.min_replicas, 1),
            "maxReplicas": spec.max_replicas,
            "metrics": [
                pods_metric("vllm_num_requests_waiting", spec.queue_target),
                pods_metric("dcgm_fi_dev_gpu_util", spec.gpu_utilization_target),
            ],
            "behavior": BEHAVIOR,
        },
    }


def kustomization(spec: ServingSpec, files: list[str]) -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": spec.namespace,
        "resources": files,
    }


def kustomize_archive(spec: ServingSpec, documents: list[dict]) -> bytes:
    """A zip of a kustomize base: one file per object (in apply order) and the kustomization.yaml
    listing them, so a team can `kubectl apply -k` it or overlay their own patches."""
    files = [f"{doc['kind'].lower()}.yaml" for doc in documents]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, doc in zip(files, documents, strict=True):
            archive.writestr(name, yaml.safe_dump(doc, sort_keys=False))
        archive.writestr("kustomization.yaml", yaml.safe_dump(kustomization(spec, files), sort_keys=False))
    return buffer.getvalue()


def serving_manifests(spec: ServingSpec, *, autoscaler: str) -> list[dict]:
    """Every object to serve the model, in the order to apply them. `autoscaler`: "keda" | "hpa"."""
    if autoscaler not in ("keda", "hpa"):
        raise ValueError(f"autoscaler must be keda or hpa, not {autoscaler!r}")
    scaler = scaled_object(spec) if autoscaler == "keda" else pods_hpa(spec)
    return [weights_claim(spec), download_job(spec), deployment(spec), service(spec), disruption_budget(spec), scaler]


def dns_name(text: str) -> str:
    """A name Kubernetes accepts (RFC 1123 label), from anything."""
    name = _NAME.sub("-", text.lower()).strip("-")[:63].strip("-")
    return name or "model"


def weights_gib(weights_mib: int | None) -> int:
    """Volume size for the weights: room for the checkpoint twice (safetensors + a conversion), 20 GiB at least."""
    if not weights_mib:
        return 100
    return max(20, math.ceil(weights_mib * 2 / 1024 / 10) * 10)
