"""The Kubernetes backend against a fake Kubernetes API over real HTTP: what a snapshot sends, how
refusals, stalls and bad kubeconfigs read, and odd objects or APIs it skips with a warning.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from kubernetes import client as k8s

from fleet.backends.base import BackendError
from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.backends.kubernetes.values import parse_quantity
from tests.fakekube import objects as o
from tests.fakekube.server import write_kubeconfig
from tests.fleet.kube_helpers import TOKEN, backend, by_name, error_of, free_port

# --------------------------------------------------------------------------- what is sent


def test_it_sends_only_authenticated_list_requests_during_a_snapshot(world, fake_kubeconfig):
    backend(fake_kubeconfig).snapshot()
    assert {r.method for r in world.requests} == {"GET"}
    assert {r.authorization for r in world.requests} == {f"Bearer {TOKEN}"}
    assert {r.path for r in world.requests} == {
        "/api/v1/nodes",
        "/api/v1/pods",
        "/api/v1/resourcequotas",
        "/apis/apps/v1/replicasets",
        "/apis/apps/v1/deployments",
        "/apis/autoscaling/v2/horizontalpodautoscalers",
        "/apis/keda.sh/v1alpha1/scaledobjects",
        "/apis/karpenter.sh/v1/nodepools",
        "/apis/events.k8s.io/v1/events",
        "/apis/karpenter.sh/v1/nodeclaims",
    }


def test_it_asks_for_replicaset_metadata_only(world, fake_kubeconfig):
    backend(fake_kubeconfig).snapshot()
    (rs,) = world.requests_to("/apis/apps/v1/replicasets")
    assert "as=PartialObjectMetadataList" in rs.accept


def test_it_lists_only_allow_listed_namespaces(world, fake_kubeconfig):
    snap = backend(fake_kubeconfig, namespaces=("team-b",)).snapshot()
    paths = {r.path for r in world.requests}
    assert paths == {
        "/api/v1/nodes",
        "/api/v1/namespaces/team-b/pods",
        "/api/v1/namespaces/team-b/resourcequotas",
        "/apis/apps/v1/namespaces/team-b/replicasets",
        "/apis/apps/v1/namespaces/team-b/deployments",
        "/apis/autoscaling/v2/namespaces/team-b/horizontalpodautoscalers",
        "/apis/keda.sh/v1alpha1/namespaces/team-b/scaledobjects",
        "/apis/karpenter.sh/v1/nodepools",
        "/apis/events.k8s.io/v1/namespaces/team-b/events",
        "/apis/karpenter.sh/v1/nodeclaims",
    }
    assert {d.namespace for d in snap.deployments} == {"team-b"}
    assert {p.namespace for p in snap.pods} == {"team-b"}
    assert len(snap.nodes) == 6  # nodes are cluster-wide


def test_it_pages_through_long_lists(world, fake_kubeconfig):
    b = backend(fake_kubeconfig)
    b.page_size = 3
    snap = b.snapshot()
    pod_pages = world.requests_to("/api/v1/pods")
    assert len(pod_pages) == 4  # 11 pods, 3 a page
    assert all(r.query["limit"] == "3" for r in pod_pages)
    assert all("continue" in r.query for r in pod_pages[1:])
    assert len(snap.pods) == 8 and len(snap.nodes) == 6


def test_it_restarts_a_list_whose_continue_token_expired(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 410, query_contains="continue=", times=1)
    b = backend(fake_kubeconfig)
    b.page_size = 5
    snap = b.snapshot()
    assert len(snap.pods) == 8
    assert ["continue" in r.query for r in world.requests_to("/api/v1/pods")] == [False, True, False, True, True]


# --------------------------------------------------------------------------- failures


def test_it_reports_refused_credentials(world, tmp_path):
    kubeconfig = world.kubeconfig(tmp_path / "kc", token="wrong-token")
    err = error_of(backend(kubeconfig).snapshot)
    assert str(err).startswith("credentials refused (401)")
    assert (err.status, err.transient) == (401, False)
    assert "wrong-token" not in str(err)


def test_it_names_what_the_serviceaccount_may_not_list(world, fake_kubeconfig):
    world.fail("/api/v1/namespaces/team-b/pods", 403)
    err = error_of(backend(fake_kubeconfig, namespaces=("team-b",)).snapshot)
    assert str(err) == "forbidden: the ServiceAccount scaledeck/scaledeck may not list pods in namespace team-b (403)"
    assert (err.status, err.transient) == (403, False)


def test_it_suggests_an_allow_list_when_listing_every_namespace_is_forbidden(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 403)
    err = error_of(backend(fake_kubeconfig).snapshot)
    assert "may not list pods in all namespaces (403)" in str(err)
    assert "namespaces it may read" in str(err)


def test_it_reports_server_errors_as_transient(world, fake_kubeconfig):
    world.fail("/apis/apps/v1/deployments", 500)
    err = error_of(backend(fake_kubeconfig).snapshot)
    assert "failed to list deployments in all namespaces: 500" in str(err)
    assert (err.status, err.transient) == (500, True)


def test_it_gives_up_quickly_when_the_api_server_stalls(world, fake_kubeconfig):
    world.delay(10, path="/api/v1/nodes")
    started = time.monotonic()
    err = error_of(backend(fake_kubeconfig, timeout_seconds=0.3).snapshot)
    assert time.monotonic() - started < 3
    assert str(err) == f"cannot reach the Kubernetes API at {world.url}: no answer within 0.3 s"
    assert err.transient is True


def test_it_reports_a_refused_connection(tmp_path):
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}", TOKEN)
    err = error_of(backend(kubeconfig, timeout_seconds=2).snapshot)
    assert str(err) == f"cannot reach the Kubernetes API at http://127.0.0.1:{port}: connection refused"
    assert err.transient is True


def test_it_reports_a_name_that_does_not_resolve(tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://k8s.invalid:6443", TOKEN)
    err = error_of(backend(kubeconfig, timeout_seconds=2).snapshot)
    assert str(err).startswith("cannot reach the Kubernetes API at https://k8s.invalid:6443: ")
    assert err.transient is True


@pytest.mark.parametrize(
    ("content", "context", "expected"),
    [
        (None, "", "cannot be read (No such file or directory)"),
        ("clusters: [unclosed\n  - : :", "", "is not a valid kubeconfig (not YAML)"),
        ("just a string", "", "is not a valid kubeconfig (no contexts)"),
        ("KUBECONFIG", "elsewhere", "has no context 'elsewhere'"),
        ("KUBECONFIG-NO-CURRENT", "", "has no current-context; name a context"),
        ("KUBECONFIG-NO-SERVER", "", "is not a valid kubeconfig (its cluster has no server URL)"),
    ],
)
def test_it_explains_a_bad_kubeconfig(tmp_path, content, context, expected):
    path = tmp_path / "kubeconfig"
    if content is not None and content.startswith("KUBECONFIG"):
        write_kubeconfig(path, "http://127.0.0.1:1", TOKEN)
        text = path.read_text()
        if content == "KUBECONFIG-NO-CURRENT":
            text = text.replace("current-context: fake", "current-context: ''")
        elif content == "KUBECONFIG-NO-SERVER":
            text = text.replace("server: http://127.0.0.1:1", "certificate-authority: /nope")
        path.write_text(text)
    elif content is not None:
        path.write_text(content)
    b = backend(path, context=context)  # building never fails; the first call does
    err = error_of(b.snapshot)
    assert str(err) == f"kubeconfig {path}: {expected}"
    assert TOKEN not in str(err)


def test_it_explains_a_missing_in_cluster_service_account():
    err = error_of(KubernetesClusterBackend(in_cluster=True).snapshot)
    assert str(err).startswith("in-cluster config is unavailable")


def test_it_never_shows_the_token_in_an_error(world, fake_kubeconfig):
    messages = []
    for status in (401, 403, 404, 409, 422, 500):
        world.reset_switches()
        world.fail("/api/v1/nodes", status, message=f"echo {TOKEN} Bearer {TOKEN}")
        messages.append(str(error_of(backend(fake_kubeconfig).snapshot)))
    assert not [m for m in messages if TOKEN in m]


def test_it_uses_its_own_client_not_the_global_default(world, fake_kubeconfig, tmp_path):
    from tests.fakekube.server import FakeKubeApi

    before = k8s.Configuration._default
    with FakeKubeApi(token="other-token") as other:
        other.load(o.gpu_node("other-node"))
        first = backend(fake_kubeconfig).snapshot()
        second = backend(other.kubeconfig(tmp_path / "other")).snapshot()
        assert other.requests and {r.authorization for r in other.requests} == {"Bearer other-token"}
    assert len(first.nodes) == 6 and [n.name for n in second.nodes] == ["other-node"]
    assert k8s.Configuration._default is before


# --------------------------------------------------------------------------- odd objects


def test_it_skips_odd_objects_with_a_warning(world, fake_kubeconfig):
    world.load_raw("Pod", "not an object")
    world.load_raw("Pod", {"metadata": "none"})
    negative = o.deployment("team-a", "negative", containers=[o.vllm_container(model="m/n")], replicas=-3)
    lots = o.deployment("team-a", "lots", containers=[o.vllm_container(model="m/l")])
    lots["spec"]["replicas"] = "lots"
    bad_capacity = o.gpu_node("bad-capacity")
    bad_capacity["status"]["capacity"]["nvidia.com/gpu"] = "eight"
    bad_label = o.gpu_node("bad-label")
    bad_label["metadata"]["labels"]["nvidia.com/gpu.count"] = "eight"
    no_max = o.hpa("team-a", "no-max", target="llama-3-70b")
    del no_max["spec"]["maxReplicas"]
    odd_pause = o.scaled_object("team-a", "odd-pause", target="llama-3-70b", paused_replicas="many")
    odd_tp = o.deployment("team-a", "odd-tp", containers=[o.vllm_container(model="m/t", extra_args=["-tp", "four"])])
    huge = o.resource_quota("team-a", "huge", hard={"requests.nvidia.com/gpu": "1E"})
    world.load(negative, lots, bad_capacity, bad_label, no_max, odd_pause, odd_tp, huge)

    b = backend(fake_kubeconfig)
    snap = b.snapshot()
    warnings = b.last_warnings()

    names = {d.name for d in snap.deployments}
    assert "negative" not in names and "lots" not in names
    assert {"llama-3-70b", "odd-tp"} <= names  # the odd tensor-parallel value degrades to 1
    assert by_name(snap.deployments, "odd-tp").tensor_parallel == 1
    assert "bad-capacity" not in {n.name for n in snap.nodes}
    assert by_name(snap.nodes, "bad-label").gpu_count == 0
    assert "no-max" not in {a.name for a in snap.autoscalers}
    assert by_name(snap.autoscalers, "odd-pause").paused_replicas is None
    assert "huge" not in {q.name for q in snap.quotas}
    assert len(snap.pods) == 8

    def warned(*words):
        return any(all(w in line for w in words) for line in warnings)

    assert warned("skipped a pod without a usable identity: not an object")
    assert warned("skipped a pod without a usable identity: no metadata")
    assert warned("skipped deployment team-a/negative", "spec.replicas")
    assert warned("skipped deployment team-a/lots", "'lots'")
    assert warned("skipped node bad-capacity", "nvidia.com/gpu", "'eight'")
    assert warned("node bad-label", "nvidia.com/gpu.count")
    assert warned("skipped hpa team-a/no-max", "spec.maxReplicas")
    assert warned("scaledobject team-a/odd-pause", "paused-replicas")
    assert warned("deployment team-a/odd-tp", "--tensor-parallel-size")
    assert warned("skipped resourcequota team-a/huge", "1E")
    assert len(warnings) == 10


def test_it_starts_each_snapshot_with_no_warnings(world, fake_kubeconfig):
    world.load_raw("Pod", "not an object")
    b = backend(fake_kubeconfig)
    b.snapshot()
    assert len(b.last_warnings()) == 1
    world.delete("Pod", "default", "\x00raw-0")
    b.snapshot()
    assert b.last_warnings() == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", Decimal(8)),
        (8, Decimal(8)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("2Gi", Decimal(2 * 2**30)),
        ("500m", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1.5", Decimal("1.5")),
        (" 4 ", Decimal(4)),
    ],
)
def test_it_parses_kubernetes_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["eight", "", "1kk", "1KiB", "--1", True, None, 1.5, "1e9999"])
def test_it_refuses_what_is_not_a_quantity(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_it_reads_an_api_without_replicasets_hpas_or_quotas_as_having_none(world, fake_kubeconfig):
    for path in (
        "/apis/apps/v1/replicasets",
        "/apis/autoscaling/v2/horizontalpodautoscalers",
        "/api/v1/resourcequotas",
    ):
        world.fail(path, 404)
    b = backend(fake_kubeconfig)

    snap = b.snapshot()

    assert [a for a in snap.autoscalers if a.kind == "hpa"] == []
    assert snap.quotas == ()
    # Pods still find their Deployment through the ReplicaSet's <deployment>-<pod-template-hash> name.
    linked = [p for p in snap.pods if p.owner_kind == "Deployment"]
    assert linked and all(p.owner_name in {d.name for d in snap.deployments} for p in linked)
    assert sum("does not serve" in w for w in b.last_warnings()) == 3


def test_it_still_fails_when_pods_cannot_be_listed(world, fake_kubeconfig):
    world.fail("/api/v1/pods", 404)

    with pytest.raises(BackendError):
        backend(fake_kubeconfig).snapshot()
