"""Repartitioning a node against the fake Kubernetes API: cordon, evictions (never deletes), the
label, the GPU operator's state, uncordon and the advertised devices, in that order; a PDB's 429
pauses before the label; stop and resume."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from fleet.backends.registry import cluster_backend
from mig.apply import (
    mig_application_request,
    mig_application_resume,
    mig_application_run,
    mig_application_stop,
    mig_applications_recover,
)
from mig.models import MigApplication, MigPlan
from scaling.services import Actor
from tests.factories import GpuNodeFactory, ModelDeploymentFactory, NodePoolFactory, PodFactory, UserFactory
from tests.fakekube import objects as k
from tests.fakekube.mig_manager import STATE, MigManager

pytestmark = pytest.mark.django_db
A100 = "NVIDIA-A100-SXM4-80GB"
NODE = "a100-0"
LAYOUT = {"nvidia.com/mig-1g.10gb": 56}


def pdb(name: str, allowed: int) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "llama"}}},
        "status": {"disruptionsAllowed": allowed},
    }


@pytest.fixture
def repartition(world):
    """Node a100-0 (whole GPUs, state success from its current layout) with two vLLM pods and a
    DaemonSet pod, a plan moving it to all-1g.10gb, and the mig-manager watching it."""
    node = k.gpu_node(NODE, product=A100, mig_config="all-disabled", instance_type="p4de.24xlarge", pool="a100")
    node["metadata"]["labels"][STATE] = "success"
    world.kube.load(node)
    vllm = [k.gpu_container("vllm")]
    world.kube.load(
        k.pod(
            "llm",
            "llama-a",
            containers=vllm,
            owner=("ReplicaSet", "llama-7d9f"),
            node=NODE,
            state="ready",
            labels={"app": "llama"},
        ),
        k.pod(
            "llm",
            "llama-b",
            containers=vllm,
            owner=("ReplicaSet", "llama-7d9f"),
            node=NODE,
            state="ready",
            labels={"app": "llama"},
        ),
        k.pod(
            "gpu-operator",
            "dcgm-exporter-x1",
            containers=[k.plain_container()],
            owner=("DaemonSet", "dcgm"),
            node=NODE,
            state="ready",
        ),
        k.pod(
            "llm",
            "elsewhere",
            containers=vllm,
            owner=("ReplicaSet", "llama-7d9f"),
            node="a100-1",
            state="ready",
            labels={"app": "llama"},
        ),
    )
    world.kube.load(pdb("llama-pdb", 2))
    pool = NodePoolFactory(cluster=world.cluster, name="a100")
    db_node = GpuNodeFactory(cluster=world.cluster, node_pool=pool, name=NODE, mig_config="all-disabled")
    GpuNodeFactory(cluster=world.cluster, node_pool=pool, name="a100-1")
    deployment = ModelDeploymentFactory(cluster=world.cluster, name="llama", replicas_desired=4)
    for name in ("llama-a", "llama-b"):
        PodFactory(deployment=deployment, node=db_node, name=name)
    plan = MigPlan.objects.create(
        cluster=world.cluster,
        node_pool=pool,
        actor_label="alice",
        nodes=[
            {
                "node": NODE,
                "from_config": "all-disabled",
                "to_config": "all-1g.10gb",
                "devices_before": {},
                "devices_after": {"1g.10gb": 56},
                "freed": False,
                "gpu_count": 8,
            },
            {
                "node": "a100-1",
                "from_config": "",
                "to_config": "",
                "devices_before": {},
                "devices_after": {},
                "freed": True,
                "gpu_count": 8,
            },
        ],
    )
    manager = MigManager({"all-1g.10gb": LAYOUT}).install(world.kube, NODE)
    world.kube.clear_requests()
    return plan, manager


def actor():
    return Actor.of(UserFactory(username="alice", role="operator"))


def run_to_the_end(world, application, *, step=timedelta(seconds=10), limit=50):
    """Run slice after slice, as the task re-sending itself would, with the clock moving on."""
    now = timezone.now()
    result = None
    for _ in range(limit):
        result = mig_application_run(application_id=application.id, backend=cluster_backend(world.cluster), now=now)
        if result.wait_seconds is None:
            break
        now += step
    application.refresh_from_db()
    return result


def writes(world):
    return [(r.method, r.path, r.body) for r in world.kube.requests if r.method != "GET"]


def test_it_cordons_evicts_relabels_waits_uncordons_and_verifies_in_order(world, repartition):
    plan, _ = repartition
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack the small models", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "succeeded", application.error
    node_path = f"/api/v1/nodes/{NODE}"
    assert [(m, p) for m, p, _ in writes(world)] == [
        ("PATCH", node_path),
        ("POST", "/api/v1/namespaces/llm/pods/llama-a/eviction"),
        ("POST", "/api/v1/namespaces/llm/pods/llama-b/eviction"),
        ("PATCH", node_path),
        ("PATCH", node_path),
    ]
    cordon, _, _, relabel, uncordon = (b for _, _, b in writes(world))
    assert cordon == {"spec": {"unschedulable": True}}
    assert relabel["metadata"]["labels"] == {"nvidia.com/mig.config": "all-1g.10gb"}
    assert uncordon == {"spec": {"unschedulable": None}}
    assert not [r for r in world.kube.requests if r.method == "DELETE"]
    assert world.kube.get("Pod", "gpu-operator", "dcgm-exporter-x1")  # DaemonSet pods stay
    evictions = [r.body for r in world.kube.requests if r.path.endswith("/eviction")]
    assert evictions[0] == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "llama-a", "namespace": "llm"},
    }
    # the relabel came before any read of the new state, and the uncordon after success was seen
    index = {id(r): i for i, r in enumerate(world.kube.requests)}
    relabel_at = next(index[id(r)] for r in world.kube.requests if r.method == "PATCH" and "metadata" in (r.body or {}))
    uncordon_at = max(index[id(r)] for r in world.kube.requests if r.method == "PATCH")
    assert relabel_at < uncordon_at
    assert [s["status"] for s in application.steps] == ["done"] * 6
    assert application.steps[-1]["detail"] == "advertises 56 x 1g.10gb"
    assert world.kube.get("Node", "", NODE)["spec"].get("unschedulable") is None


def test_a_pdb_refusal_pauses_before_the_label_and_names_the_budget(world, repartition):
    plan, _ = repartition
    world.kube.load(pdb("llama-pdb", 1))
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "paused"
    assert "PodDisruptionBudget llm/llama-pdb refused to evict pod llm/llama-b (429)" in application.error
    labels = world.kube.get("Node", "", NODE)["metadata"]["labels"]
    assert labels["nvidia.com/mig.config"] == "all-disabled"
    assert not [b for m, _, b in writes(world) if m == "PATCH" and "metadata" in (b or {})]
    assert not [r for r in world.kube.requests if r.method == "DELETE"]
    drain = application.steps[1]
    assert drain["status"] == "failed" and drain["evicted"] == ["llm/llama-a"]

    # the budget allows it again: resume goes on from the drain
    world.kube.load(pdb("llama-pdb", 1))
    mig_application_resume(application=application, actor=actor())
    run_to_the_end(world, application)
    assert application.status == "succeeded", application.error
    assert len([r for r in world.kube.requests if r.path.endswith("/eviction")]) == 3


def test_a_success_left_from_the_old_layout_does_not_count(world, repartition, settings):
    plan, manager = repartition
    world.kube.reactors.remove(manager)  # no operator reacts: the state stays "success" from before
    settings.SCALEDECK_MIG_STATE_TIMEOUT_SECONDS = 60
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "failed"
    assert application.error == "no success from the GPU operator within 60 s (state: success)"
    assert world.kube.get("Node", "", NODE)["spec"]["unschedulable"] is True  # never uncordoned


def test_a_failed_repartition_fails_the_step_and_keeps_the_node_cordoned(world, repartition):
    plan, manager = repartition
    manager.outcome = "failed"
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "failed", application.error
    assert [s["status"] for s in application.steps] == ["done", "done", "done", "failed", "pending", "pending"]
    assert "reported failed for layout all-1g.10gb" in application.error
    assert world.kube.get("Node", "", NODE)["spec"]["unschedulable"] is True


def test_it_stops_on_request_and_resumes_where_it_stopped(world, repartition):
    plan, _ = repartition
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())
    mig_application_stop(application=application, actor=actor())
    application.refresh_from_db()
    assert application.status == "paused" and not world.kube.requests

    mig_application_resume(application=application, actor=actor())
    run_to_the_end(world, application)
    assert application.status == "succeeded"


def test_it_refuses_to_drain_a_deployment_below_its_ready_floor(world, repartition):
    plan, _ = repartition
    deployment = ModelDeploymentFactory(cluster=world.cluster, name="solo", replicas_desired=1)
    PodFactory(deployment=deployment, node=plan.cluster.nodes.get(name=NODE), name="solo-1")

    with pytest.raises(ApplicationError) as refused:
        mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    assert refused.value.status == 409
    assert refused.value.message == (
        f"draining {NODE} would leave llm/solo with 0 ready replicas, below its floor of 1: scale it up first"
    )
    assert not MigApplication.objects.exists()


def test_one_node_at_a_time_per_pool(world, repartition):
    plan, _ = repartition
    mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())
    plan.nodes[1].update(freed=False, to_config="all-3g.40gb")
    plan.save()
    with pytest.raises(ApplicationError, match=f"node {NODE} .* of pool a100 is being repartitioned: one node"):
        mig_application_request(plan=plan, node_name="a100-1", reason="pack", actor=actor())


@pytest.mark.parametrize(
    ("node", "reason", "message"),
    [
        ("nope", "pack", "node nope is not in plan"),
        ("a100-1", "pack", "changes nothing on node a100-1"),
        (NODE, "  ", "say why (the reason is audited)"),
    ],
)
def test_it_refuses_bad_requests_and_stores_nothing(world, repartition, node, reason, message):
    plan, _ = repartition
    with pytest.raises(ApplicationError, match=re.escape(message)):
        mig_application_request(plan=plan, node_name=node, reason=reason, actor=actor())
    assert not MigApplication.objects.exists()


def test_a_lost_slice_is_made_runnable_again_and_finishes(world, repartition):
    plan, _ = repartition
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())
    now = timezone.now()
    mig_application_run(application_id=application.id, backend=cluster_backend(world.cluster), now=now)
    # the worker died mid-slice: the row says running and nobody holds it
    MigApplication.objects.filter(id=application.id).update(status="running")
    assert mig_applications_recover(now=now + timedelta(seconds=30)) == []  # too early to call it lost

    assert mig_applications_recover(now=now + timedelta(minutes=10)) == [application.id]

    application.refresh_from_db()
    assert application.status == "pending"
    run_to_the_end(world, application)
    assert application.status == "succeeded", application.error
    assert len([r for r in world.kube.requests if r.path.endswith("/eviction")]) == 2


def test_a_repartition_asked_for_and_its_end_are_in_the_audit_list(world, repartition):
    from audit.selectors import AuditFilter, audit_rows

    plan, _ = repartition
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack the small models", actor=actor())
    run_to_the_end(world, application)

    _, rows = audit_rows(f=AuditFilter(kinds=("mig_repartition",)))
    assert [(r["actor"], r["after"]["status"]) for r in reversed(rows)] == [
        ("alice", "pending"),
        (f"mig-application:#{application.id}", "succeeded"),
    ]
    assert all(r["object"] == f"{world.cluster.name}/{NODE} -> all-1g.10gb" for r in rows)
    assert rows[-1]["reason"] == "pack the small models"


def test_a_repartition_stopped_by_a_pdb_is_audited_with_the_refusal(world, repartition):
    from audit.selectors import AuditFilter, audit_rows

    plan, _ = repartition
    world.kube.load(pdb("llama-pdb", 1))
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())
    run_to_the_end(world, application)

    _, rows = audit_rows(f=AuditFilter(kinds=("mig_repartition",)))
    ended = rows[0]["after"]
    assert (ended["status"], ended["step"]) == ("paused", "drain")
    assert "llm/llama-pdb" in ended["error"]


def config_map(*layouts: str) -> dict:
    """The GPU operator's mig-parted ConfigMap, naming `layouts` (all whole-GPU 1g.10gb slices)."""
    body = "version: v1\nmig-configs:\n" + "".join(
        f'  {name}:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {{"1g.10gb": 7}}\n'
        for name in layouts
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "default-mig-parted-config", "namespace": "gpu-operator"},
        "data": {"config.yaml": body},
    }


def test_it_reads_the_operators_layouts_before_touching_the_node(world, repartition):
    plan, _ = repartition
    world.kube.load(config_map("all-1g.10gb", "all-3g.40gb"))
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "succeeded", application.error
    first_write = next(i for i, r in enumerate(world.kube.requests) if r.method != "GET")
    read = [
        i
        for i, r in enumerate(world.kube.requests)
        if r.path == "/api/v1/namespaces/gpu-operator/configmaps/default-mig-parted-config"
    ]
    assert read and read[0] < first_write


def test_a_layout_the_operator_does_not_offer_fails_before_the_node_is_touched(world, repartition):
    plan, _ = repartition
    world.kube.load(config_map("all-3g.40gb"))
    application = mig_application_request(plan=plan, node_name=NODE, reason="pack", actor=actor())

    run_to_the_end(world, application)

    assert application.status == "failed"
    assert application.error.startswith("layout all-1g.10gb is not in ConfigMap gpu-operator/default-mig-parted-config")
    assert "nothing was changed on the node" in application.error
    assert (application.steps[0]["name"], application.steps[0]["status"]) == ("cordon", "failed")
    assert writes(world) == []
    # Once the entry is added, resuming goes all the way.
    world.kube.load(config_map("all-3g.40gb", "all-1g.10gb"))
    mig_application_resume(application=application, actor=actor())
    run_to_the_end(world, application)
    assert application.status == "succeeded", application.error
