"""A 14-minute scale-up, as a Kubernetes API shows it afterwards: Events, pod conditions, NodeClaims.

`llm/llama` (an HPA on the vLLM queue) runs 2 pods on `gpu-a`. At 03:02:30 the HPA rescales
2 -> 6 because the queue is above target; 4 new pods fail to schedule (no free GPU), Karpenter
launches a NodeClaim at 03:02:40 whose node is ready at 03:09; the pods are scheduled on it,
pull the image until 03:11 and load weights until Ready at 03:15 (each pod a few seconds apart).

`scale_up_story()` returns the objects (for `FakeKubeApi.load`) and `STORY` the times tests
assert against; `events_api` says which Events API serves them ("events.k8s.io/v1" or "v1").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fakekube import objects as o

BASE = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
NAMESPACE, NAME, NEW_NODE, POOL, CLAIM = "llm", "llama", "gpu-new", "gpu-h100", "gpu-h100-x7k2p"


def at(minutes: int, seconds: int = 0) -> datetime:
    return BASE + timedelta(minutes=minutes, seconds=seconds)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# Per new pod i (0-3): created, scheduled, pulling, pulled, started, ready.
def pod_times(i: int) -> dict[str, datetime]:
    return {
        "created": at(2, 30),
        "scheduled": at(9, 5 + i),
        "pulling": at(9, 6 + i),
        "pulled": at(11, i),
        "started": at(11, 5 + i),
        "ready": at(15, i),
    }


SYNCED_AT = BASE + timedelta(minutes=20)
# The two pods that ran before the story started over a week earlier: kept, outside the 7-day window.
EARLIER = BASE - timedelta(days=9)

STORY = {
    "rescale": at(2, 30),
    "failed": at(2, 31),
    "launched": at(2, 40),
    "registered": at(7, 0),
    "node_ready": at(9, 0),
}


def _event(
    api_version: str,
    uid: str,
    obj: tuple[str, str],
    reason: str,
    message: str,
    when: datetime,
    *,
    count: int = 1,
    event_type: str = "Normal",
) -> dict:
    kind, name = obj
    ref = {"kind": kind, "namespace": NAMESPACE, "name": name, "apiVersion": "v1" if kind == "Pod" else "apps/v1"}
    meta = {"name": f"{name}.{uid}", "namespace": NAMESPACE, "uid": uid, "creationTimestamp": iso(when)}
    if api_version == "v1":
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": meta,
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": event_type,
            "count": count,
            "firstTimestamp": iso(when),
            "lastTimestamp": iso(when),
            "source": {"component": "story"},
        }
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta,
        "regarding": ref,
        "reason": reason,
        "note": message,
        "type": event_type,
        "eventTime": iso(when).replace("Z", ".000000Z"),
        "reportingController": "story",
        "action": reason,
    }
    if count > 1:
        body["series"] = {"count": count, "lastObservedTime": iso(when).replace("Z", ".000000Z")}
    return body


def _conditions(pod: dict, times: dict[str, datetime], node: str) -> None:
    pod["metadata"]["creationTimestamp"] = iso(times["created"])
    pod["spec"]["nodeName"] = node
    pod["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(times["scheduled"])},
        {"type": "Initialized", "status": "True", "lastTransitionTime": iso(times["scheduled"])},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": iso(times["ready"])},
        {"type": "Ready", "status": "True", "lastTransitionTime": iso(times["ready"])},
    ]


def nodeclaim(name: str, pool: str, node: str, launched: datetime, registered: datetime, ready: datetime) -> dict:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": pool}, "creationTimestamp": iso(launched)},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}},
        "status": {
            "nodeName": node,
            "providerID": f"aws:///us-east-1a/i-{name[-5:]}",
            "conditions": [
                {"type": "Launched", "status": "True", "lastTransitionTime": iso(launched)},
                {"type": "Registered", "status": "True", "lastTransitionTime": iso(registered)},
                {"type": "Initialized", "status": "True", "lastTransitionTime": iso(ready)},
                {"type": "Ready", "status": "True", "lastTransitionTime": iso(ready)},
            ],
        },
    }


def scale_up_story(events_api: str = "events.k8s.io/v1") -> list[dict]:
    dep = o.deployment(
        NAMESPACE, NAME, replicas=6, ready=6, containers=[o.vllm_container(model=o.LLAMA_70B, tp=1, gpus=1)]
    )
    rs = o.replicaset(dep, replicas=6)
    rs_name = rs["metadata"]["name"]
    pods = o.pods_of(dep, rs, [("ready", "gpu-a", "")] * 2 + [("ready", NEW_NODE, "")] * 4)
    hpa = o.hpa(NAMESPACE, NAME, target=NAME, min_replicas=2, max_replicas=8)
    objs = [
        o.gpu_node("gpu-a", gpus=8),
        o.gpu_node(NEW_NODE, gpus=8, pool=POOL),
        o.nodepool(POOL),
        dep,
        rs,
        *pods,
        hpa,
        nodeclaim(CLAIM, POOL, NEW_NODE, STORY["launched"], STORY["registered"], STORY["node_ready"]),
    ]
    objs.append(
        _event(
            events_api,
            "e-rescale-0001",
            ("HorizontalPodAutoscaler", NAME),
            "SuccessfulRescale",
            "New size: 6; reason: external metric vllm:num_requests_waiting above target",
            STORY["rescale"],
        )
    )
    objs.append(
        _event(
            events_api,
            "e-scaling-rs-01",
            ("Deployment", NAME),
            "ScalingReplicaSet",
            f"Scaled up replica set {rs_name} from 2 to 6",
            STORY["rescale"],
        )
    )
    for pod in pods[:2]:
        _conditions(pod, {"created": EARLIER, "scheduled": EARLIER, "ready": EARLIER + timedelta(minutes=6)}, "gpu-a")
    for i, pod in enumerate(pods[2:]):
        times = pod_times(i)
        _conditions(pod, times, NEW_NODE)
        pod_name = pod["metadata"]["name"]
        ref = ("Pod", pod_name)
        objs.append(
            _event(
                events_api,
                f"e-failed-{i:04d}",
                ref,
                "FailedScheduling",
                "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are "
                "available: 1 No preemption victims found for incoming pod.",
                STORY["failed"],
                event_type="Warning",
            )
        )
        objs.append(
            _event(
                events_api, f"e-pulling-{i:03d}", ref, "Pulling", 'Pulling image "vllm/vllm-openai"', times["pulling"]
            )
        )
        objs.append(
            _event(
                events_api,
                f"e-pulled-{i:04d}",
                ref,
                "Pulled",
                'Successfully pulled image "vllm/vllm-openai" in 1m54s',
                times["pulled"],
            )
        )
        objs.append(
            _event(events_api, f"e-started-{i:03d}", ref, "Started", "Started container vllm", times["started"])
        )
    return objs


def sync_story(fake_kube, kubeconfig, *, name: str = "prod"):
    """Load the story into `fake_kube` and sync it into a new cluster 20 minutes after it began
    (through the Kubernetes backend, over HTTP). Returns the Cluster."""
    import time_machine

    from fleet.backends.kubernetes.backend import KubernetesClusterBackend
    from fleet.models import Cluster
    from fleet.sync import cluster_sync

    fake_kube.load(scale_up_story())
    cluster = Cluster.objects.create(name=name, backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(kubeconfig))
    with time_machine.travel(SYNCED_AT, tick=False):
        result = cluster_sync(cluster=cluster, backend=KubernetesClusterBackend(kubeconfig_path=str(kubeconfig)))
    assert result.ok, result.error
    return cluster
