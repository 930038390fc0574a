"""The Kubernetes backend's writes against a fake Kubernetes API over real HTTP: merge patches carrying
the resourceVersion, conflicts, the allow-list, and what the API server refuses.
"""

from __future__ import annotations

import pytest

from fleet.backends.base import UNCHANGED, ConflictError, ObjectState
from tests.fleet.kube_helpers import MERGE, TOKEN, backend, error_of

# --------------------------------------------------------------------------- writes


def patches(fake):
    return [r for r in fake.requests if r.method == "PATCH"]


def test_it_scales_a_deployment_through_its_scale_subresource(world, writer):
    rv = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    new_rv = writer.scale_deployment("team-a", "llama-3-70b", 3, resource_version=rv)
    (req,) = patches(world)
    assert req.path == "/apis/apps/v1/namespaces/team-a/deployments/llama-3-70b/scale"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}}
    stored = world.get("Deployment", "team-a", "llama-3-70b")
    assert stored["spec"]["replicas"] == 3
    assert new_rv == stored["metadata"]["resourceVersion"] != rv


def test_it_pins_a_scaledobject_with_paused_replicas(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    new_rv = writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, min_replicas=2, paused_replicas=4)
    (req,) = patches(world)
    assert req.path == "/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects/mistral-7b"
    assert req.content_type == MERGE  # a custom resource refuses strategic merge (415)
    assert req.body == {
        "metadata": {"resourceVersion": rv, "annotations": {"autoscaling.keda.sh/paused-replicas": "4"}},
        "spec": {"minReplicaCount": 2},
    }
    stored = world.get("ScaledObject", "team-b", "mistral-7b")
    assert stored["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "4"
    assert (stored["spec"]["minReplicaCount"], stored["spec"]["maxReplicaCount"]) == (2, 8)
    assert new_rv == stored["metadata"]["resourceVersion"]


def test_it_removes_a_pause_with_a_null_in_the_merge_patch(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, paused_replicas=None)
    (req,) = patches(world)
    assert req.body == {
        "metadata": {"resourceVersion": rv, "annotations": {"autoscaling.keda.sh/paused-replicas": None}}
    }
    assert (
        "autoscaling.keda.sh/paused-replicas"
        not in world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["annotations"]
    )


def test_it_leaves_unchanged_fields_out_of_a_patch(world, writer):
    rv = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    writer.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, max_replicas=12, min_replicas=UNCHANGED)
    (req,) = patches(world)
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"maxReplicaCount": 12}}
    annotations = world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["annotations"]
    assert annotations["autoscaling.keda.sh/paused-replicas"] == "3"


def test_it_patches_an_hpa_floor_and_ceiling(world, writer):
    rv = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    writer.patch_hpa("team-a", "llama-3-70b", resource_version=rv, min_replicas=4, max_replicas=8)
    (req,) = patches(world)
    assert req.path == "/apis/autoscaling/v2/namespaces/team-a/horizontalpodautoscalers/llama-3-70b"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"minReplicas": 4, "maxReplicas": 8}}
    spec = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (4, 8)


def test_it_patches_gpu_quota_entries_and_keeps_the_others(world, writer):
    rv = world.get("ResourceQuota", "team-a", "gpu-quota")["metadata"]["resourceVersion"]
    writer.patch_quota("team-a", "gpu-quota", {"requests.nvidia.com/gpu": 24}, resource_version=rv)
    (req,) = patches(world)
    assert req.path == "/api/v1/namespaces/team-a/resourcequotas/gpu-quota"
    assert req.content_type == MERGE
    assert req.body == {"metadata": {"resourceVersion": rv}, "spec": {"hard": {"requests.nvidia.com/gpu": "24"}}}
    hard = world.get("ResourceQuota", "team-a", "gpu-quota")["spec"]["hard"]
    assert hard == {"requests.nvidia.com/gpu": "24", "requests.cpu": "256", "pods": "100"}


WRITES = {
    "scale": lambda b, rv: b.scale_deployment("team-a", "llama-3-70b", 3, resource_version=rv),
    "scaledobject": lambda b, rv: b.patch_scaledobject("team-b", "mistral-7b", resource_version=rv, min_replicas=2),
    "hpa": lambda b, rv: b.patch_hpa("team-a", "llama-3-70b", resource_version=rv, max_replicas=9),
    "quota": lambda b, rv: b.patch_quota("team-a", "gpu-quota", {"requests.nvidia.com/gpu": 8}, resource_version=rv),
}
TARGETS = {
    "scale": ("Deployment", "team-a", "llama-3-70b"),
    "scaledobject": ("ScaledObject", "team-b", "mistral-7b"),
    "hpa": ("HorizontalPodAutoscaler", "team-a", "llama-3-70b"),
    "quota": ("ResourceQuota", "team-a", "gpu-quota"),
}


@pytest.mark.parametrize("write", WRITES)
def test_it_raises_a_conflict_when_the_object_changed_since_it_was_read(world, writer, write):
    kind, namespace, name = TARGETS[write]
    stale = world.get(kind, namespace, name)["metadata"]["resourceVersion"]
    world.touch(kind, namespace, name)
    with pytest.raises(ConflictError) as info:
        WRITES[write](writer, stale)
    assert (info.value.status, info.value.transient) == (409, True)
    assert "changed since it was read (409)" in str(info.value)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("allowed", [("team-c",), ()])
def test_it_refuses_writes_outside_the_allow_list_before_any_request(world, fake_kubeconfig, write, allowed):
    b = backend(fake_kubeconfig, namespaces=allowed)
    err = error_of(lambda: WRITES[write](b, "1"))
    assert "is not in this cluster's allow-list" in str(err)
    assert world.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.scale_deployment("team-a", "x", -1, resource_version="1"),
        lambda b: b.scale_deployment("team-a", "x", True, resource_version="1"),
        lambda b: b.scale_deployment("team-a", "x", 2, resource_version=""),
        lambda b: b.scale_deployment("team-a", "../../nodes", 2, resource_version="1"),
        lambda b: b.patch_scaledobject("team-b", "x", resource_version="1", min_replicas=5, max_replicas=2),
        lambda b: b.patch_scaledobject("team-b", "x", resource_version="1"),
        lambda b: b.patch_hpa("team-a", "x", resource_version="1", max_replicas=0),
        lambda b: b.patch_quota("team-a", "q", {"requests.cpu": 8}, resource_version="1"),
        lambda b: b.patch_quota("team-a", "q", {"requests.nvidia.com/gpu": "8"}, resource_version="1"),
    ],
)
def test_it_refuses_bad_write_values_before_any_request(world, writer, call):
    error_of(lambda: call(writer))
    assert world.requests == []


def test_it_rereads_objects_with_their_resource_version(world, writer):
    deployment = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    assert writer.get_deployment_scale("team-a", "llama-3-70b") == ({"replicas": 2}, deployment)
    values, rv = writer.get_scaledobject("team-b", "mistral-7b")
    assert values == {"min_replicas": 1, "max_replicas": 8, "paused_replicas": 3}
    assert rv == world.get("ScaledObject", "team-b", "mistral-7b")["metadata"]["resourceVersion"]
    assert writer.get_hpa("team-a", "llama-3-70b")[0] == {"min_replicas": 2, "max_replicas": 6}
    assert writer.get_quota("team-a", "gpu-quota")[0] == {
        "hard": {"requests.nvidia.com/gpu": 16},
        "used": {"requests.nvidia.com/gpu": 4},
    }
    state = writer.read_object("scaledobject", "team-b", "mistral-7b")
    assert state == ObjectState("scaledobject", "team-b", "mistral-7b", values, rv)
    assert {r.method for r in world.requests} == {"GET"}


def test_it_writes_with_what_it_reread(world, writer):
    state = writer.read_object("deployment", "team-a", "llama-3-70b")
    writer.scale_deployment("team-a", "llama-3-70b", 5, resource_version=state.resource_version)
    assert writer.read_object("deployment", "team-a", "llama-3-70b").values == {"replicas": 5}


def test_it_reports_a_missing_object(writer):
    err = error_of(lambda: writer.get_hpa("team-a", "nope"))
    assert str(err) == "not found: get horizontalpodautoscalers nope in namespace team-a (404)"
    assert err.status == 404


def test_it_names_a_forbidden_write(world, writer):
    world.fail("/apis/keda.sh", 403, method="PATCH")
    err = error_of(lambda: writer.patch_scaledobject("team-b", "mistral-7b", resource_version="1", max_replicas=9))
    assert str(err) == (
        "forbidden: the ServiceAccount scaledeck/scaledeck may not patch scaledobjects.keda.sh mistral-7b "
        "in namespace team-b (403)"
    )


def test_it_relays_why_the_api_server_refused_a_change(world, writer):
    rv = world.get("HorizontalPodAutoscaler", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]
    err = error_of(lambda: writer.patch_hpa("team-a", "llama-3-70b", resource_version=rv, max_replicas=1))
    assert str(err).startswith("the Kubernetes API refused to patch horizontalpodautoscalers llama-3-70b")
    assert "(422): spec.maxReplicas" in str(err)


def test_it_would_be_refused_a_strategic_merge_patch_on_a_scaledobject(world):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{world.url}/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects/mistral-7b",
        data=json.dumps({"spec": {"minReplicaCount": 3}}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json", "Authorization": f"Bearer {TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 415


def test_it_is_a_cluster_backend_and_a_cluster_writer(fake_kubeconfig):
    from fleet.backends.base import ClusterBackend, ClusterWriter

    b = backend(fake_kubeconfig)
    assert isinstance(b, ClusterBackend) and isinstance(b, ClusterWriter)


def test_it_would_apply_a_json_patch_guarded_by_a_test_of_the_resource_version(world):
    import json
    import urllib.error
    import urllib.request

    rv = world.get("Deployment", "team-a", "llama-3-70b")["metadata"]["resourceVersion"]

    def send(ops):
        request = urllib.request.Request(
            f"{world.url}/apis/apps/v1/namespaces/team-a/deployments/llama-3-70b",
            data=json.dumps(ops).encode(),
            method="PATCH",
            headers={"Content-Type": "application/json-patch+json", "Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
    ]
    assert send(ops)["spec"]["replicas"] == 4
    with pytest.raises(urllib.error.HTTPError) as info:
        send(ops)  # the resourceVersion moved on
    assert info.value.code == 422
