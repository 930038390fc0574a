"""Builders for realistic Kubernetes objects, as a real API server returns them (plain dicts).

Shapes follow what `kubectl get -o json` shows on EKS/GKE/AKS GPU clusters with the NVIDIA GPU
operator (GPU feature discovery labels, MIG manager), Karpenter v1, KEDA v2 and vLLM. Each
builder takes the facts a test cares about as keywords and fills in the rest plausibly,
including the noise a real cluster carries (managedFields, images, many labels).

`realistic_cluster()` is one small world covering every case the backend interprets;
`big_cluster()` is a 2,000-node / 16,000-GPU / 500-deployment world for benchmarks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

GPU = "nvidia.com/gpu"
CREATED = "2025-03-01T08:00:00Z"
STARTED = "2025-03-01T09:30:00Z"
VLLM_IMAGE = "vllm/vllm-openai:v0.8.5"


def _hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _suffix(n: int) -> str:
    """A unique 5-character pod-name suffix, like the random ones Kubernetes generates."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    out = ""
    for _ in range(5):
        n, digit = divmod(n, len(alphabet))
        out = alphabet[digit] + out
    return out


def _managed_fields(manager: str) -> list[dict]:
    return [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": CREATED,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:status": {"f:conditions": {".": {}}}},
        }
    ]


# --------------------------------------------------------------------------- nodes


def gpu_node(
    name: str,
    *,
    product: str = "NVIDIA-H100-80GB-HBM3",
    gpus: int = 8,
    memory_mib: int = 81559,
    instance_type: str = "p5.48xlarge",
    zone: str = "us-east-1a",
    region: str = "us-east-1",
    pool: str = "gpu-h100",
    capacity_type: str = "on-demand",
    provider: str = "karpenter",  # karpenter | eks | gke | aks
    mig_config: str | None = None,
    mig_strategy: str = "mixed",
    mig_devices: dict[str, int] | None = None,  # profile -> count, e.g. {"1g.10gb": 56}
    ready: bool = True,
    unschedulable: bool = False,
    taints: Sequence[dict] | None = None,
    beta_instance_label_only: bool = False,
    created: str = CREATED,
) -> dict:
    """A GPU node as GPU feature discovery labels it. With `mig_devices`, the node uses the
    mixed strategy: `nvidia.com/gpu` capacity is 0 and each profile is its own resource."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": region,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.memory": str(memory_mib),
        "nvidia.com/gpu.family": "hopper" if "H100" in product else "ampere",
        "nvidia.com/gpu.machine": instance_type,
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "127",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.deploy.dcgm-exporter": "true",
        "nvidia.com/gpu.deploy.gpu-feature-discovery": "true",
        "nvidia.com/mig.capable": "true" if ("A100" in product or "H100" in product) else "false",
        "nvidia.com/mig.strategy": mig_strategy,
    }
    if not beta_instance_label_only:
        labels["node.kubernetes.io/instance-type"] = instance_type
    if mig_config is not None:
        labels["nvidia.com/mig.config"] = mig_config
        labels["nvidia.com/mig.config.state"] = "success"
    for profile, count in (mig_devices or {}).items():
        labels[f"nvidia.com/mig-{profile}.count"] = str(count)
    if provider == "karpenter":
        labels.update(
            {
                "karpenter.sh/nodepool": pool,
                "karpenter.sh/capacity-type": capacity_type,
                "karpenter.sh/initialized": "true",
                "karpenter.sh/registered": "true",
                "karpenter.k8s.aws/instance-family": instance_type.split(".")[0],
                "karpenter.k8s.aws/instance-gpu-count": str(gpus),
                "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
            }
        )
    elif provider == "eks":
        labels.update(
            {
                "eks.amazonaws.com/nodegroup": pool,
                "eks.amazonaws.com/capacityType": "SPOT" if capacity_type == "spot" else "ON_DEMAND",
                "eks.amazonaws.com/nodegroup-image": "ami-0a1b2c3d4e5f67890",
            }
        )
    elif provider == "gke":
        labels.update({"cloud.google.com/gke-nodepool": pool, "cloud.google.com/gke-accelerator": "nvidia-l4"})
        if capacity_type == "spot":
            labels["cloud.google.com/gke-spot"] = "true"
        elif capacity_type == "preemptible":
            labels["cloud.google.com/gke-preemptible"] = "true"
    elif provider == "aks":
        labels.update({"kubernetes.azure.com/agentpool": pool, "agentpool": pool})
        if capacity_type == "spot":
            labels["kubernetes.azure.com/scalesetpriority"] = "spot"

    gpu_quantity = "0" if mig_devices else str(gpus)
    capacity = {
        "cpu": "192",
        "ephemeral-storage": "1952553420Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "2097027012Ki",
        "pods": "110",
        GPU: gpu_quantity,
        "vpc.amazonaws.com/efa": "32",
    }
    allocatable = dict(capacity, cpu="191450m", memory="2084336068Ki", **{"ephemeral-storage": "1798389447509"})
    for profile, count in (mig_devices or {}).items():
        capacity[f"nvidia.com/mig-{profile}"] = str(count)
        allocatable[f"nvidia.com/mig-{profile}"] = str(count)
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": f"KubeletHas{r}",
            "message": m,
            "lastHeartbeatTime": CREATED,
            "lastTransitionTime": CREATED,
        }
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else "container runtime network not ready",
            "lastHeartbeatTime": CREATED,
            "lastTransitionTime": CREATED,
        }
    )
    spec: dict = {
        "providerID": f"aws:///{zone}/i-{_hash(name, length=17)}",
        "taints": list(taints) if taints is not None else [{"key": GPU, "value": "true", "effect": "NoSchedule"}],
    }
    if unschedulable:
        spec["unschedulable"] = True
        spec["taints"].append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": CREATED})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": "10.0.12.34",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "nvidia.com/gpu-driver-upgrade-enabled": "true",
            },
            "creationTimestamp": created,
            "managedFields": _managed_fields("kubelet"),
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "10.0.12.34"},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": f"{name}.ec2.internal"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _hash(name, "machine", length=32),
                "systemUUID": _hash(name, "uuid", length=32),
                "bootID": _hash(name, "boot", length=32),
                "kernelVersion": "6.1.109-118.189.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241010",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.31.2-eks-94953ac",
                "kubeProxyVersion": "v1.31.2-eks-94953ac",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [
                {"names": [f"docker.io/{VLLM_IMAGE}"], "sizeBytes": 9_813_456_123},
                {"names": ["nvcr.io/nvidia/k8s-device-plugin:v0.17.0"], "sizeBytes": 154_276_890},
                {"names": ["nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"], "sizeBytes": 421_987_532},
                {"names": ["nvcr.io/nvidia/gpu-feature-discovery:v0.8.2"], "sizeBytes": 98_765_432},
                {
                    "names": ["602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.31.2"],
                    "sizeBytes": 36_123_654,
                },
                {
                    "names": ["602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.0"],
                    "sizeBytes": 42_876_123,
                },
            ],
        },
    }


def cpu_node(name: str, *, instance_type: str = "m6i.2xlarge", zone: str = "us-east-1a") -> dict:
    node = gpu_node(name, instance_type=instance_type, zone=zone, pool="system", taints=[])
    labels = node["metadata"]["labels"]
    for key in [k for k in labels if k.startswith("nvidia.com/") or "gpu" in k]:
        del labels[key]
    for resources in (node["status"]["capacity"], node["status"]["allocatable"]):
        resources.pop(GPU)
        resources.pop("vpc.amazonaws.com/efa")
    return node


# --------------------------------------------------------------------------- workloads


def _probe(path: str, initial_delay: int | None, *, period: int = 10, failure: int = 3) -> dict:
    probe = {
        "httpGet": {"path": path, "port": 8000, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": failure,
    }
    if initial_delay is not None:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def vllm_container(
    *,
    model: str,
    tp: int = 1,
    gpu_resource: str = GPU,
    gpus: int | None = None,
    style: str = "serve",  # serve | module | flag | shell
    image: str = VLLM_IMAGE,
    max_model_len: int | str | None = None,
    gpu_memory_utilization: float | None = None,
    liveness_delay: int | None = None,
    readiness_delay: int | None = None,
    limits_only: bool = False,
    extra_args: Sequence[str] = (),
) -> dict:
    """A vLLM serving container. `style` picks the command-line form seen in the wild."""
    gpus = tp if gpus is None else gpus
    options = []
    if tp != 1 or style == "serve":
        options += ["--tensor-parallel-size", str(tp)]
    if max_model_len is not None:
        options += ["--max-model-len", str(max_model_len)]
    if gpu_memory_utilization is not None:
        options += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    options += ["--port", "8000", *extra_args]
    if style == "serve":
        command, args = ["vllm", "serve", model], options
    elif style == "module":
        command, args = ["python3", "-m", "vllm.entrypoints.openai.api_server"], [f"--model={model}", *options]
    elif style == "flag":  # the image's entrypoint runs the server
        command, args = None, ["--model", model, *options]
    elif style == "shell":
        command, args = ["/bin/sh", "-c"], [" ".join(["exec", "vllm", "serve", model, *options])]
    else:
        raise ValueError(style)
    resources = {"limits": {gpu_resource: str(gpus), "memory": "160Gi"}}
    if not limits_only:
        resources["requests"] = {gpu_resource: str(gpus), "cpu": "8", "memory": "160Gi"}
    container: dict = {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
        "env": [
            {"name": "HF_HOME", "value": "/models/.cache"},
            {"name": "HUGGING_FACE_HUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
        ],
        "resources": resources,
        "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "shm", "mountPath": "/dev/shm"}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if command is not None:
        container["command"] = command
    if liveness_delay is not None:
        container["livenessProbe"] = _probe("/health", liveness_delay)
    if readiness_delay is not None:
        container["readinessProbe"] = _probe("/health", readiness_delay, period=5)
    return container


def deployment(
    namespace: str,
    name: str,
    *,
    containers: Sequence[dict],
    replicas: int | None = 1,
    ready: int = 0,
    updated: int | None = None,
    available: int | None = None,
    max_unavailable: int | str | None = None,
    max_surge: int | str | None = None,
    strategy_type: str = "RollingUpdate",
    grace: int | None = None,
    labels: dict[str, str] | None = None,
    progressing_reason: str = "NewReplicaSetAvailable",
    generation: int = 3,
) -> dict:
    labels = labels or {"app.kubernetes.io/name": name}
    template_labels = {"app": name}
    spec: dict = {
        "selector": {"matchLabels": template_labels},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {"labels": template_labels, "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {
                "containers": list(containers),
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                "volumes": [
                    {"name": "models", "persistentVolumeClaim": {"claimName": f"{name}-models"}},
                    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
                ],
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    if grace is not None:
        spec["template"]["spec"]["terminationGracePeriodSeconds"] = grace
    if strategy_type == "RollingUpdate":
        rolling = {}
        if max_unavailable is not None:
            rolling["maxUnavailable"] = max_unavailable
        if max_surge is not None:
            rolling["maxSurge"] = max_surge
        spec["strategy"] = {"type": "RollingUpdate", **({"rollingUpdate": rolling} if rolling else {})}
    else:
        spec["strategy"] = {"type": strategy_type}
    desired = replicas if replicas is not None else 1
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "generation": generation,
            "creationTimestamp": CREATED,
            "managedFields": _managed_fields("kubectl-client-side-apply"),
        },
        "spec": spec,
        "status": {
            "observedGeneration": generation,
            "replicas": desired,
            "readyReplicas": ready,
            "updatedReplicas": desired if updated is None else updated,
            "availableReplicas": ready if available is None else available,
            **({"unavailableReplicas": desired - ready} if desired > ready else {}),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if ready else "False",
                    "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
                {
                    "type": "Progressing",
                    "status": "True" if progressing_reason != "ProgressDeadlineExceeded" else "False",
                    "reason": progressing_reason,
                    "message": f'ReplicaSet "{name}-x" is progressing.',
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
            ],
        },
    }


def replicaset(deploy: dict, *, revision: int = 3, replicas: int | None = None) -> dict:
    """A ReplicaSet of `deploy`, owned by it (name <deployment>-<pod-template-hash>)."""
    meta = deploy["metadata"]
    template_hash = _hash(meta["namespace"], meta["name"], str(revision))
    desired = deploy["spec"].get("replicas", 1) if replicas is None else replicas
    template = {**deploy["spec"]["template"]}
    template["metadata"] = {
        **template["metadata"],
        "labels": {**template["metadata"]["labels"], "pod-template-hash": template_hash},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{template_hash}",
            "namespace": meta["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "deployment.kubernetes.io/desired-replicas": str(desired),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta.get("uid", _hash(meta["name"], "uid", length=36)),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "creationTimestamp": CREATED,
        },
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": template["metadata"]["labels"]},
            "template": template,
        },
        "status": {
            "replicas": desired,
            "readyReplicas": desired,
            "availableReplicas": desired,
            "observedGeneration": 1,
        },
    }


def _container_status(name: str, image: str, state: str, *, ready: bool, restarts: int, reason: str = "") -> dict:
    if state == "running":
        state_body = {"running": {"startedAt": STARTED}}
    elif state == "waiting":
        state_body = {"waiting": {"reason": reason, "message": f"{reason}: see events"}}
    else:
        state_body = {
            "terminated": {
                "reason": reason or "Completed",
                "exitCode": 0 if not reason else 1,
                "startedAt": STARTED,
                "finishedAt": STARTED,
            }
        }
    status = {
        "name": name,
        "image": image,
        "imageID": f"docker.io/{image}@sha256:{_hash(image, length=64)}" if state != "waiting" else "",
        "ready": ready,
        "started": state == "running",
        "restartCount": restarts,
        "state": state_body,
    }
    if restarts:
        status["lastState"] = {
            "terminated": {"reason": "Error", "exitCode": 1, "startedAt": STARTED, "finishedAt": STARTED}
        }
    return status


def pod(
    namespace: str,
    name: str,
    *,
    containers: Sequence[dict],
    owner: tuple[str, str] | None = None,  # (kind, name), e.g. ("ReplicaSet", "llama-7d9f")
    node: str = "",
    state: str = "running",  # running | ready | waiting | unscheduled | succeeded | failed
    reason: str = "",  # waiting reason (ContainerCreating, CrashLoopBackOff, ...)
    restarts: int = 0,
    labels: dict[str, str] | None = None,
    init_containers: Sequence[dict] = (),
) -> dict:
    """A pod. `state`: "ready" (running and ready), "running" (started, not ready yet),
    "waiting" (scheduled, container waiting with `reason`), "unscheduled", "succeeded", "failed"."""
    containers = [dict(c) for c in containers]
    phase = {
        "ready": "Running",
        "running": "Running",
        "waiting": "Pending",
        "unscheduled": "Pending",
        "succeeded": "Succeeded",
        "failed": "Failed",
    }[state]
    if state == "waiting" and reason == "CrashLoopBackOff":
        phase = "Running"  # its container has run before
    ready = state == "ready"
    meta: dict = {
        "name": name,
        "namespace": namespace,
        "labels": labels or {},
        "creationTimestamp": CREATED,
        "managedFields": _managed_fields("kubelet"),
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1" if owner[0] != "Job" else "batch/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": _hash(*owner, length=36),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict = {
        "containers": containers,
        "restartPolicy": "Always" if state not in ("succeeded", "failed") else "Never",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": GPU, "operator": "Exists", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if init_containers:
        spec["initContainers"] = list(init_containers)
    if node:
        spec["nodeName"] = node
    conditions = []
    if state == "unscheduled":
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/6 nodes are available: 6 Insufficient nvidia.com/gpu.",
                "lastTransitionTime": CREATED,
            }
        )
    else:
        conditions += [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": CREATED},
            {"type": "Initialized", "status": "True", "lastTransitionTime": CREATED},
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": CREATED,
                **(
                    {}
                    if ready
                    else {"reason": "ContainersNotReady", "message": "containers with unready status: [vllm]"}
                ),
            },
            {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": CREATED},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": CREATED},
        ]
    status: dict = {"phase": phase, "conditions": conditions, "qosClass": "Burstable"}
    if state != "unscheduled":
        status.update({"hostIP": "10.0.12.34", "podIP": "10.0.77.12", "startTime": STARTED})
        container_state = {
            "ready": "running",
            "running": "running",
            "waiting": "waiting",
            "succeeded": "terminated",
            "failed": "terminated",
        }[state]
        status["containerStatuses"] = [
            _container_status(
                c["name"],
                c.get("image", ""),
                container_state,
                ready=ready,
                restarts=restarts,
                reason=reason if container_state != "running" else "",
            )
            for c in containers
        ]
    if state == "failed" and reason:
        status["reason"] = reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def pods_of(deploy: dict, rs: dict, states: Sequence[tuple[str, str, str]]) -> list[dict]:
    """Pods of a Deployment's ReplicaSet; `states` is (state, node, reason) per pod."""
    meta = rs["metadata"]
    containers = deploy["spec"]["template"]["spec"]["containers"]
    out = []
    for i, (state, node, reason) in enumerate(states):
        suffix = _suffix(int(_hash(meta["name"], length=6), 16) + i)
        out.append(
            pod(
                meta["namespace"],
                f"{meta['name']}-{suffix}",
                containers=containers,
                owner=("ReplicaSet", meta["name"]),
                node=node,
                state=state,
                reason=reason,
                labels=meta["labels"],
                restarts=7 if reason == "CrashLoopBackOff" else 0,
            )
        )
    return out


def vllm_deployment_with_pods(
    namespace: str, name: str, nodes: Sequence[str], *, model: str = "", gpus: int = 1, resource: str = GPU
) -> list[dict]:
    """A vLLM Deployment, its ReplicaSet and one ready pod per entry of `nodes` (a node may repeat).

    Whole GPUs beyond one per pod are tensor parallel; MIG pods hold `gpus` slices.
    """
    dep = deployment(
        namespace, name, replicas=len(nodes), ready=len(nodes),
        containers=[vllm_container(model=model or f"org/{name}", tp=gpus if resource == GPU else 1,
                                   gpu_resource=resource, gpus=gpus)],
    )  # fmt: skip
    rs = replicaset(dep)
    return [dep, rs, *pods_of(dep, rs, [("ready", node, "") for node in nodes])]


def gpu_container(name: str = "main", *, gpus: int = 1, resource: str = GPU, image: str = "busybox:1.36") -> dict:
    return {
        "name": name,
        "image": image,
        "command": ["sleep", "infinity"],
        "resources": {"limits": {resource: str(gpus)}, "requests": {resource: str(gpus), "cpu": "1"}},
    }


def plain_container(name: str = "main", image: str = "registry.k8s.io/coredns/coredns:v1.11.3") -> dict:
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
    }


# --------------------------------------------------------------------------- autoscalers


def hpa(
    namespace: str,
    name: str,
    *,
    target: str,
    min_replicas: int | None = 1,
    max_replicas: int = 4,
    metrics: Sequence[dict] | None = None,
    owner_scaledobject: str = "",
    target_kind: str = "Deployment",
) -> dict:
    """An autoscaling/v2 HPA. Default metric: vLLM queue depth per pod (a Pods metric)."""
    if metrics is None:
        metrics = [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "vllm:num_requests_waiting"},
                    "target": {"type": "AverageValue", "averageValue": "5"},
                },
            }
        ]
    meta: dict = {"name": name, "namespace": namespace, "creationTimestamp": CREATED}
    if owner_scaledobject:
        meta["labels"] = {
            "app.kubernetes.io/managed-by": "keda-operator",
            "scaledobject.keda.sh/name": owner_scaledobject,
        }
        meta["ownerReferences"] = [
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": owner_scaledobject,
                "uid": _hash(owner_scaledobject, length=36),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
        "maxReplicas": max_replicas,
        "metrics": list(metrics),
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": spec,
        "status": {
            "currentReplicas": min_replicas or 1,
            "desiredReplicas": min_replicas or 1,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": CREATED}
            ],
        },
    }


def scaled_object(
    namespace: str,
    name: str,
    *,
    target: str,
    min_replicas: int | None = 1,
    max_replicas: int | None = 8,
    query: str = "vllm:num_requests_waiting",
    threshold: str = "5",
    triggers: Sequence[dict] | None = None,
    paused_replicas: str | None = None,
    paused: str | None = None,
    target_kind: str | None = None,
) -> dict:
    """A KEDA ScaledObject scaling on a Prometheus query (the vLLM queue depth by default)."""
    if triggers is None:
        triggers = [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                    "metricName": "vllm:num_requests_waiting",
                    "query": query,
                    "threshold": threshold,
                },
            }
        ]
    annotations = {}
    if paused_replicas is not None:
        annotations["autoscaling.keda.sh/paused-replicas"] = paused_replicas
    if paused is not None:
        annotations["autoscaling.keda.sh/paused"] = paused
    ref = {"name": target}
    if target_kind:
        ref["kind"] = target_kind
    spec: dict = {"scaleTargetRef": ref, "pollingInterval": 15, "cooldownPeriod": 360, "triggers": list(triggers)}
    if min_replicas is not None:
        spec["minReplicaCount"] = min_replicas
    if max_replicas is not None:
        spec["maxReplicaCount"] = max_replicas
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": annotations,
            "generation": 1,
            "creationTimestamp": CREATED,
            "finalizers": ["finalizer.keda.sh"],
        },
        "spec": spec,
        "status": {
            "hpaName": f"keda-hpa-{name}",
            "originalReplicaCount": 1,
            "scaleTargetKind": "apps/v1.Deployment",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                {"type": "Active", "status": "True", "reason": "ScalerActive"},
            ],
        },
    }


def keda_hpa(so: dict) -> dict:
    """The HPA KEDA creates for a ScaledObject: keda-hpa-<name>, owned by it, on an External metric."""
    spec = so["spec"]
    return hpa(
        so["metadata"]["namespace"],
        f"keda-hpa-{so['metadata']['name']}",
        target=spec["scaleTargetRef"]["name"],
        min_replicas=max(spec.get("minReplicaCount", 0), 1),
        max_replicas=spec.get("maxReplicaCount", 100),
        metrics=[
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "s0-prometheus",
                        "selector": {"matchLabels": {"scaledobject.keda.sh/name": so["metadata"]["name"]}},
                    },
                    "target": {
                        "type": "AverageValue",
                        "averageValue": spec["triggers"][0]["metadata"].get("threshold", "1"),
                    },
                },
            }
        ],
        owner_scaledobject=so["metadata"]["name"],
    )


# --------------------------------------------------------------------------- quotas, node pools


def resource_quota(
    namespace: str,
    name: str,
    *,
    hard: dict[str, str],
    used: dict[str, str] | None = None,
    status: bool = True,
) -> dict:
    obj: dict = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED},
        "spec": {"hard": dict(hard)},
    }
    if status:
        obj["status"] = {"hard": dict(hard), "used": dict(used or {})}
    return obj


def nodepool(
    name: str,
    *,
    instance_types: Sequence[str] = ("p5.48xlarge",),
    capacity_types: Sequence[str] | None = ("spot", "on-demand"),
    capacity_operator: str = "In",
    gpu_limit: int | str | None = 64,
    consolidation: str | None = "WhenEmpty",
) -> dict:
    """A Karpenter v1 NodePool for GPU nodes."""
    requirements = [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(instance_types)},
    ]
    if capacity_types is not None:
        requirements.append(
            {"key": "karpenter.sh/capacity-type", "operator": capacity_operator, "values": list(capacity_types)}
        )
    spec: dict = {
        "template": {
            "metadata": {"labels": {"workload": "llm"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": requirements,
                "taints": [{"key": GPU, "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        "disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "10%"}]},
    }
    if consolidation is not None:
        spec["disruption"]["consolidationPolicy"] = consolidation
    if gpu_limit is not None:
        spec["limits"] = {"cpu": "4000", GPU: gpu_limit}
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": name,
            "generation": 1,
            "creationTimestamp": CREATED,
            "annotations": {"karpenter.sh/nodepool-hash": "4012513481", "karpenter.sh/nodepool-hash-version": "v3"},
        },
        "spec": spec,
        "status": {
            "resources": {"cpu": "384", GPU: "16", "nodes": "2"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
        },
    }


# --------------------------------------------------------------------------- worlds

LLAMA_70B = "meta-llama/Meta-Llama-3-70B-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-Instruct-v0.3"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"


def realistic_cluster() -> list[dict]:
    """A small cluster covering every case the backend interprets (names are stable, tests use them).

    Nodes: h100-a (Karpenter on-demand), h100-b (Karpenter spot, cordoned), a100-mig (EKS node
    group, MIG all-1g.10gb, beta instance label only), gke-l4 (GKE spot, MIG all-disabled, not
    ready), aks-a100 (AKS spot), cpu-1 (no GPU).
    team-a/llama-3-70b: TP=4 `vllm serve`, HPA, one pod ready and one waiting for a node, an old
    ReplicaSet. team-b/mistral-7b: MIG slices (limits only), `python -m vllm...`, a ScaledObject
    with paused-replicas and KEDA's own HPA, pods pulling / loading / ready. team-b/qwen: both an
    HPA and a ScaledObject (a conflict), a crash-looping pod. research: a Job pod and a bare pod
    holding GPUs. kube-system: coredns (no GPU: left out). Quotas in team-a and team-b; Karpenter
    NodePools gpu-h100 and gpu-a10g.
    """
    nodes = [
        gpu_node("h100-a"),
        gpu_node("h100-b", capacity_type="spot", unschedulable=True, zone="us-east-1b"),
        gpu_node(
            "a100-mig",
            product="NVIDIA-A100-SXM4-80GB",
            memory_mib=81920,
            instance_type="p4de.24xlarge",
            provider="eks",
            pool="a100-mig-group",
            mig_config="all-1g.10gb",
            mig_devices={"1g.10gb": 56},
            beta_instance_label_only=True,
        ),
        gpu_node(
            "gke-l4",
            product="NVIDIA-L4",
            gpus=4,
            memory_mib=23034,
            instance_type="g2-standard-48",
            provider="gke",
            pool="l4-pool",
            capacity_type="spot",
            zone="us-central1-a",
            region="us-central1",
            mig_config="all-disabled",
            ready=False,
        ),
        gpu_node(
            "aks-a100",
            product="NVIDIA-A100-PCIE-80GB",
            gpus=4,
            memory_mib=81920,
            instance_type="Standard_NC96ads_A100_v4",
            provider="aks",
            pool="gpupool",
            capacity_type="spot",
            zone="eastus-1",
            region="eastus",
        ),
        cpu_node("cpu-1"),
    ]

    llama = deployment(
        "team-a",
        "llama-3-70b",
        containers=[
            vllm_container(
                model=LLAMA_70B,
                tp=4,
                max_model_len=8192,
                gpu_memory_utilization=0.92,
                liveness_delay=600,
                readiness_delay=120,
            )
        ],
        replicas=2,
        ready=1,
        updated=2,
        available=1,
        max_unavailable=0,
        max_surge=1,
        grace=120,
        labels={"app.kubernetes.io/name": "llama-3-70b", "team": "a"},
    )
    llama_rs = replicaset(llama)
    llama_old_rs = replicaset(llama, revision=2, replicas=0)
    llama_pods = pods_of(llama, llama_rs, [("ready", "h100-a", ""), ("unscheduled", "", "")])

    mistral = deployment(
        "team-b",
        "mistral-7b",
        containers=[
            vllm_container(
                model=MISTRAL_7B,
                style="module",
                gpu_resource="nvidia.com/mig-1g.10gb",
                gpus=1,
                limits_only=True,
                extra_args=["-tp", "1"],
            )
        ],
        replicas=3,
        ready=1,
    )
    mistral_rs = replicaset(mistral)
    mistral_pods = pods_of(
        mistral,
        mistral_rs,
        [("ready", "a100-mig", ""), ("waiting", "a100-mig", "ContainerCreating"), ("running", "a100-mig", "")],
    )
    mistral_so = scaled_object(
        "team-b", "mistral-7b", target="mistral-7b", min_replicas=1, max_replicas=8, paused_replicas="3"
    )

    qwen_container = vllm_container(model="$(MODEL_ID)", style="flag", max_model_len="32k")
    qwen_container["env"].append({"name": "MODEL_ID", "value": QWEN_7B})
    qwen = deployment(
        "team-b",
        "qwen",
        containers=[qwen_container],
        replicas=1,
        ready=0,
        strategy_type="Recreate",
        progressing_reason="ProgressDeadlineExceeded",
    )
    qwen_rs = replicaset(qwen)
    qwen_pods = pods_of(qwen, qwen_rs, [("waiting", "aks-a100", "CrashLoopBackOff")])
    qwen_hpa = hpa(
        "team-b",
        "qwen-cpu",
        target="qwen",
        min_replicas=None,
        max_replicas=3,
        metrics=[
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ],
    )
    qwen_so = scaled_object(
        "team-b", "qwen", target="qwen", min_replicas=None, max_replicas=None, paused="true", target_kind="Deployment"
    )

    coredns = deployment("kube-system", "coredns", containers=[plain_container()], replicas=2, ready=2)
    coredns_rs = replicaset(coredns)
    coredns_pods = pods_of(coredns, coredns_rs, [("ready", "cpu-1", ""), ("ready", "cpu-1", "")])

    job_pod = pod(
        "research",
        "finetune-8b-x7k2p",
        containers=[gpu_container("trainer", gpus=8)],
        owner=("Job", "finetune-8b"),
        node="h100-b",
        state="ready",
    )
    bare_pod = pod("research", "debug-gpu", containers=[gpu_container(gpus=1)], node="aks-a100", state="ready")
    dcgm_pod = pod(
        "gpu-operator",
        "nvidia-dcgm-exporter-4xk2z",
        containers=[plain_container("exporter", "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9")],
        owner=("DaemonSet", "nvidia-dcgm-exporter"),
        node="h100-a",
        state="ready",
    )

    return [
        *nodes,
        llama,
        llama_rs,
        llama_old_rs,
        *llama_pods,
        hpa("team-a", "llama-3-70b", target="llama-3-70b", min_replicas=2, max_replicas=6),
        mistral,
        mistral_rs,
        *mistral_pods,
        mistral_so,
        keda_hpa(mistral_so),
        qwen,
        qwen_rs,
        *qwen_pods,
        qwen_hpa,
        qwen_so,
        coredns,
        coredns_rs,
        *coredns_pods,
        job_pod,
        bare_pod,
        dcgm_pod,
        resource_quota(
            "team-a",
            "gpu-quota",
            hard={"requests.nvidia.com/gpu": "16", "requests.cpu": "256", "pods": "100"},
            used={"requests.nvidia.com/gpu": "4", "requests.cpu": "8", "pods": "2"},
        ),
        resource_quota(
            "team-b",
            "gpu-quota",
            hard={"requests.nvidia.com/mig-1g.10gb": "14", "nvidia.com/gpu": "2", "limits.memory": "1Ti"},
            status=False,
        ),
        nodepool("gpu-h100", instance_types=("p5.48xlarge", "p5e.48xlarge"), gpu_limit=64, consolidation="WhenEmpty"),
        nodepool(
            "gpu-a10g",
            instance_types=("g5.12xlarge",),
            capacity_types=("spot",),
            capacity_operator="NotIn",
            gpu_limit=None,
            consolidation="WhenEmptyOrUnderutilized",
        ),
    ]


DAEMONSETS = (
    "nvidia-device-plugin",
    "nvidia-dcgm-exporter",
    "gpu-feature-discovery",
    "kube-proxy",
    "aws-node",
    "node-exporter",
)


def big_cluster(nodes: int = 2000, gpus_per_node: int = 8, deployments: int = 500) -> list[dict]:
    """A large GPU cluster: `nodes` Karpenter GPU nodes (1 in 8 spot), `deployments` vLLM
    deployments across 20 team namespaces using ~80% of the GPUs (1/2/4/8 GPUs per replica),
    each with its current ReplicaSet and 2 old ones; one DaemonSet pod per node for each of six
    node agents; an HPA on every other deployment and a ScaledObject (+ KEDA's HPA) on the rest;
    a GPU quota per namespace and 4 NodePools. Returns one flat list of objects for `load()`."""
    objects: list[dict] = []
    node_names = [f"ip-10-{i // 250}-{i % 250}-{(i * 7) % 250}.ec2.internal" for i in range(nodes)]
    pools = ("gpu-h100", "gpu-h100-spot", "gpu-a100", "gpu-l40s")
    for i, name in enumerate(node_names):
        pool = pools[i % len(pools)]
        objects.append(
            gpu_node(
                name,
                gpus=gpus_per_node,
                pool=pool,
                capacity_type="spot" if i % 8 == 0 else "on-demand",
                zone=("us-east-1a", "us-east-1b", "us-east-1c")[i % 3],
            )
        )
        for ds in DAEMONSETS:
            objects.append(
                pod(
                    "kube-system" if ds in ("kube-proxy", "aws-node") else "gpu-operator",
                    f"{ds}-{_suffix(i)}",
                    containers=[plain_container(ds, f"registry.example.com/{ds}:v1")],
                    owner=("DaemonSet", ds),
                    node=name,
                    state="ready",
                )
            )
    budget = int(nodes * gpus_per_node * 0.8) // max(deployments, 1)
    free = [(name, gpus_per_node) for name in node_names]
    cursor = 0
    namespaces = [f"team-{i:02d}" for i in range(20)]
    for i in range(deployments):
        ns = namespaces[i % len(namespaces)]
        gpus = (1, 2, 4, 8)[i % 4]
        replicas = max(1, budget // gpus)
        name = f"model-{i:03d}"
        dep = deployment(
            ns,
            name,
            containers=[
                vllm_container(
                    model=f"org/model-{i}", tp=gpus, max_model_len=8192, liveness_delay=300, readiness_delay=60
                )
            ],
            replicas=replicas,
            ready=replicas,
            max_unavailable=0,
            max_surge=1,
            grace=60,
        )
        rs = replicaset(dep)
        objects += [dep, rs, replicaset(dep, revision=2, replicas=0), replicaset(dep, revision=1, replicas=0)]
        states = []
        for _ in range(replicas):
            while cursor < len(free) and free[cursor][1] < gpus:
                cursor += 1
            if cursor < len(free):
                node_name, left = free[cursor]
                free[cursor] = (node_name, left - gpus)
                states.append(("ready", node_name, ""))
            else:
                states.append(("unscheduled", "", ""))
        objects += pods_of(dep, rs, states)
        if i % 2:
            objects.append(hpa(ns, name, target=name, min_replicas=1, max_replicas=replicas * 2))
        else:
            so = scaled_object(ns, name, target=name, min_replicas=1, max_replicas=replicas * 2)
            objects += [so, keda_hpa(so)]
    for ns in namespaces:
        objects.append(
            resource_quota(
                ns, "gpu-quota", hard={"requests.nvidia.com/gpu": "1000"}, used={"requests.nvidia.com/gpu": "640"}
            )
        )
    objects += [nodepool(p) for p in pools]
    return objects
