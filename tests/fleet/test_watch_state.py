"""The watcher's picture of a cluster: fed lists and events, it reads as `read_snapshot` does."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from fleet.backends.kubernetes.objects import RawLists, read_snapshot
from fleet.watch.state import ClusterState
from tests.fakekube import objects as o

KIND_OF = {
    "Node": "nodes",
    "Pod": "pods",
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "hpas",
    "ScaledObject": "scaledobjects",
    "ResourceQuota": "quotas",
    "NodePool": "nodepools",
}
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {kind: [] for kind in KIND_OF.values()}
    for obj in objects:
        kinds[KIND_OF[obj["kind"]]].append(obj)
    return kinds


def listed(objects: list[dict]) -> ClusterState:
    state = ClusterState()
    for kind, items in by_kind(objects).items():
        state.replace(kind, items)
    state.take_changes()
    return state


def as_read_snapshot(objects: list[dict]):
    kinds = by_kind(objects)
    snapshot, _ = read_snapshot(RawLists(**kinds), taken_at=NOW)
    return snapshot


def facts(snapshot) -> dict:
    return {
        "nodes": {n.name: n for n in snapshot.nodes},
        "pods": {(p.namespace, p.name): p for p in snapshot.pods},
        "deployments": {(d.namespace, d.name): d for d in snapshot.deployments},
        "autoscalers": {(a.namespace, a.kind, a.name): a for a in snapshot.autoscalers},
        "quotas": {(q.namespace, q.name): q for q in snapshot.quotas},
        "node_pools": {p.name: p for p in snapshot.node_pools},
    }


@pytest.fixture
def world() -> list[dict]:
    objects = o.realistic_cluster()
    for obj in objects:
        obj["metadata"].setdefault("resourceVersion", "1")
    return objects


def find(objects: list[dict], kind: str, name: str) -> dict:
    return next(x for x in objects if x["kind"] == kind and x["metadata"]["name"] == name)


def modified(obj: dict, edit) -> dict:
    obj = copy.deepcopy(obj)
    edit(obj)
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    return obj


def test_it_reads_the_lists_as_read_snapshot_does(world):
    assert facts(listed(world).snapshot(NOW)) == facts(as_read_snapshot(world))


def test_it_reports_only_the_pod_when_a_pod_turns_ready(world):
    state = listed(world)
    pod = find(world, "Pod", "mistral-7b-c937860dde-g7n95")
    ready = modified(pod, lambda p: p["status"]["conditions"].append({"type": "Ready", "status": "True"}))
    state.event("pods", "MODIFIED", ready)
    changes = state.take_changes()
    assert changes.pods == {("team-b", "mistral-7b-c937860dde-g7n95")}
    assert changes.count() == 1  # no node, no GPU re-packing, no deployment
    assert state.pods[("team-b", "mistral-7b-c937860dde-g7n95")].ready


def test_it_repacks_the_gpus_of_the_node_a_pod_leaves(world):
    state = listed(world)
    state.event("pods", "DELETED", find(world, "Pod", "debug-gpu"))
    changes = state.take_changes()
    assert (changes.pods, changes.gpu_nodes) == ({("research", "debug-gpu")}, {"aks-a100"})
    assert ("research", "debug-gpu") not in state.pods


def test_it_finds_a_pods_deployment_when_its_replicaset_arrives_after_it(world):
    state = listed(world)
    pod = copy.deepcopy(find(world, "Pod", "llama-3-70b-dc74b0cab8-46gjr"))
    pod["metadata"]["name"] = "llama-3-70b-canary-1"
    pod["metadata"]["labels"].pop("pod-template-hash", None)
    pod["metadata"]["ownerReferences"][0]["name"] = "llama-canary"  # not named after its Deployment
    for container in pod["spec"]["containers"]:
        container.pop("resources", None)  # no GPUs: kept only as a model deployment's pod
    state.event("pods", "ADDED", pod)
    assert not state.take_changes().pods  # whose pod it is cannot be told yet

    replicaset = copy.deepcopy(find(world, "ReplicaSet", "llama-3-70b-dc74b0cab8"))
    replicaset["metadata"]["name"] = "llama-canary"
    state.event("replicasets", "ADDED", replicaset)
    changes = state.take_changes()
    assert changes.pods == {("team-a", "llama-3-70b-canary-1")}
    kept = state.pods[("team-a", "llama-3-70b-canary-1")]
    assert (kept.owner_kind, kept.owner_name) == ("Deployment", "llama-3-70b")


def test_a_relist_changes_only_what_differs(world):
    state = listed(world)
    kinds = by_kind(world)
    state.replace("pods", kinds["pods"])
    assert not state.take_changes()
    state.replace("quotas", [q for q in kinds["quotas"] if q["metadata"]["namespace"] != "team-a"])
    changes = state.take_changes()
    assert changes.quotas == {
        ("team-a", next(q["metadata"]["name"] for q in kinds["quotas"] if q["metadata"]["namespace"] == "team-a"))
    }


def test_after_a_run_of_events_it_still_reads_as_read_snapshot_does(world):
    state = listed(world)
    current = {(x["kind"], x["metadata"].get("namespace", ""), x["metadata"]["name"]): x for x in world}

    def apply(kind: str, event: str, obj: dict) -> None:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event == "DELETED":
            current.pop(key)
        else:
            current[key] = obj
        state.event(KIND_OF[kind], event, obj)
        state.take_changes()

    apply("Node", "MODIFIED", modified(find(world, "Node", "h100-b"), lambda n: n["spec"].update(unschedulable=True)))
    apply("Deployment", "DELETED", find(world, "Deployment", "qwen"))
    apply("Pod", "DELETED", find(world, "Pod", "llama-3-70b-dc74b0cab8-46gjq"))
    apply(
        "HorizontalPodAutoscaler",
        "MODIFIED",
        modified(
            find(
                world,
                "HorizontalPodAutoscaler",
                next(x["metadata"]["name"] for x in world if x["kind"] == "HorizontalPodAutoscaler"),
            ),
            lambda h: h["spec"].update(maxReplicas=9),
        ),
    )
    apply("Deployment", "ADDED", find(world, "Deployment", "qwen"))
    apply("NodePool", "DELETED", next(x for x in world if x["kind"] == "NodePool"))
    assert facts(state.snapshot(NOW)) == facts(as_read_snapshot(list(current.values())))


def test_it_relinks_the_pods_of_a_deployment_or_node_that_vanishes(world):
    state = listed(world)
    state.event("deployments", "DELETED", find(world, "Deployment", "llama-3-70b"))
    changes = state.take_changes()
    # Its pods hold GPUs, so they stay, and their rows must stop pointing at the gone Deployment.
    assert ("team-a", "llama-3-70b-dc74b0cab8-46gjq") in changes.pods
    state.event("nodes", "DELETED", find(world, "Node", "h100-b"))
    assert ("research", "finetune-8b-x7k2p") in state.take_changes().pods
