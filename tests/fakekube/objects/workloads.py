"""vLLM Deployments, their ReplicaSets and pods, and the containers in them."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakekube.objects.base import CREATED, GPU, STARTED, VLLM_IMAGE, managed_fields, name_hash, name_suffix


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
            "managedFields": managed_fields("kubectl-client-side-apply"),
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
    template_hash = name_hash(meta["namespace"], meta["name"], str(revision))
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
                    "uid": meta.get("uid", name_hash(meta["name"], "uid", length=36)),
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
        "imageID": f"docker.io/{image}@sha256:{name_hash(image, length=64)}" if state != "waiting" else "",
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
        "managedFields": managed_fields("kubelet"),
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1" if owner[0] != "Job" else "batch/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": name_hash(*owner, length=36),
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
        suffix = name_suffix(int(name_hash(meta["name"], length=6), 16) + i)
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
