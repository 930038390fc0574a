"""GPU nodes (the GPU operator's labels, MIG layouts, Karpenter) and CPU nodes."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakekube.objects.base import CREATED, GPU, VLLM_IMAGE, managed_fields, name_hash


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
        "providerID": f"aws:///{zone}/i-{name_hash(name, length=17)}",
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
            "managedFields": managed_fields("kubelet"),
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
                "machineID": name_hash(name, "machine", length=32),
                "systemUUID": name_hash(name, "uuid", length=32),
                "bootID": name_hash(name, "boot", length=32),
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
