"""PATCH /api/v1/deployments/{id}/autoscaler/ and POST /api/v1/actions/{id}/revert/ against the fake API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.selectors import AuditFilter, audit_rows
from fleet.autoscalers import ReplicaOwnerKind
from fleet.models import Autoscaler
from scaling.models import ScaleAction
from tests.factories import ApiTokenFactory
from tests.fakekube import objects as k


def bot(role="operator", **fields) -> APIClient:
    token = ApiTokenFactory(role=role, name="policy-bot", **fields)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


@pytest.fixture
def keda_deployment(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    return dep


def patch(client, dep, body, run_on_commit=None):
    url = f"/api/v1/deployments/{dep.id}/autoscaler/"
    if run_on_commit is None:
        return client.patch(url, body, format="json")
    return run_on_commit(client.patch, url, body, format="json")


def writes(world):
    return [r for r in world.kube.requests if r.method != "GET"]


EDIT = {
    "min_replicas": 2,
    "max_replicas": 12,
    "polling_interval_seconds": 10,
    "cooldown_seconds": 120,
    "triggers": [{"index": 0, "threshold": 4, "activation_threshold": "1"}],
    "behavior": {
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    },
    "reason": "advisor's policy",
}


def test_it_answers_a_dry_run_with_the_diff_and_writes_nothing(world, keda_deployment):
    response = patch(bot(), keda_deployment, {**EDIT, "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["autoscaler"] == {"kind": "scaledobject", "name": "llama"}
    changed = {d["path"]: (d["before"], d["after"]) for d in body["diff"]}
    assert changed["spec.minReplicaCount"] == (1, 2)
    assert changed["spec.triggers[0].metadata.threshold"] == ("5", "4")
    assert changed["spec.triggers[0].metadata.activationThreshold"] == (None, "1")
    assert body["patch"]["spec"]["triggers"][0]["metadata"]["threshold"] == "4"  # a string, as KEDA stores it
    assert ScaleAction.objects.count() == 0 and writes(world) == []


def test_it_applies_exactly_the_merge_patch_the_dry_run_showed(world, keda_deployment, run_on_commit):
    client = bot()
    shown = patch(client, keda_deployment, {**EDIT, "dry_run": True}).json()
    rv_read = world.so_spec()["metadata"]["resourceVersion"]

    response = patch(client, keda_deployment, EDIT, run_on_commit)

    assert response.status_code == 202, response.json()
    assert response.json()["operation"] == "policy"
    sent = writes(world)
    assert len(sent) == 1
    assert sent[0].content_type.startswith("application/merge-patch+json")
    assert sent[0].body == shown["patch"]
    assert sent[0].body["metadata"]["resourceVersion"] == rv_read
    spec = world.so_spec()["spec"]
    assert spec["minReplicaCount"] == 2 and spec["pollingInterval"] == 10
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == EDIT["behavior"]
    action = ScaleAction.objects.get(id=response.json()["id"])
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert action.before["spec"]["minReplicaCount"] == 1 and action.after["spec"]["minReplicaCount"] == 2
    assert "spec.advanced" in action.fields and action.intent["write"]["spec"] == spec
    assert Autoscaler.objects.get(kind="scaledobject", name="llama").min_replicas == 2  # the synced row follows


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 9}, "min_replicas"),  # above the max of 8
        ({"triggers": [{"index": 3, "threshold": 4}]}, "triggers"),
        ({"triggers": [{"index": 0, "threshold": "lots"}]}, "triggers"),
        ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 7200}}}, "behavior"),
        ({"behavior": {"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]}}}, "behavior"),
        ({"paused": True}, "paused"),
    ],
)
def test_it_refuses_a_schema_invalid_edit_naming_the_field_with_nothing_written(
    world, keda_deployment, run_on_commit, edit, field
):
    response = patch(bot(), keda_deployment, {**edit, "reason": "bad"}, run_on_commit)

    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert ScaleAction.objects.count() == 0 and writes(world) == []


def test_it_edits_an_hpa_metric_target_and_behavior(world, run_on_commit):
    dep = world.deployment()
    world.hpa(dep, min_replicas=1, max_replicas=4)
    response = patch(
        bot(),
        dep,
        {"max_replicas": 6, "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}, "reason": "spike"},
        run_on_commit,
    )

    assert response.status_code == 202, response.json()
    hpa = world.kube.get("HorizontalPodAutoscaler", "llm", "llama")["spec"]
    assert hpa["maxReplicas"] == 6 and hpa["behavior"] == {"scaleUp": {"stabilizationWindowSeconds": 0}}


def test_it_warns_when_gitops_manages_the_scaledobject(world):
    dep = world.deployment()
    so = k.scaled_object("llm", "llama", target="llama")
    so["metadata"]["labels"] = {"argocd.argoproj.io/instance": "serving"}
    world.kube.load(so)
    Autoscaler.objects.create(
        cluster=world.cluster, namespace="llm", kind="scaledobject", name="llama", target_name="llama", deployment=dep
    )

    body = patch(bot(), dep, {"min_replicas": 2, "reason": "x", "dry_run": True}).json()

    assert "argocd.argoproj.io/instance" in body["warning"]


def test_it_is_for_operators_and_the_tokens_scope(world, keda_deployment):
    assert patch(bot(role="viewer"), keda_deployment, {"min_replicas": 2, "reason": "x"}).status_code == 403
    assert patch(bot(namespaces=["other"]), keda_deployment, {"min_replicas": 2, "reason": "x"}).status_code in (
        403,
        404,
    )
    assert ScaleAction.objects.count() == 0 and writes(world) == []


def test_it_refuses_a_namespace_outside_the_allow_list(world, keda_deployment):
    world.cluster.namespaces = ["other"]
    world.cluster.save()

    response = patch(bot(), keda_deployment, {"min_replicas": 2, "reason": "x"})

    assert response.status_code == 409
    assert ScaleAction.objects.count() == 0 and writes(world) == []


def test_it_reverts_an_edit_to_the_recorded_before_values_audited(world, keda_deployment, run_on_commit):
    client = bot()
    original = world.so_spec()["spec"]
    edit = patch(client, keda_deployment, EDIT, run_on_commit).json()

    response = run_on_commit(client.post, f"/api/v1/actions/{edit['id']}/revert/", {"reason": "undo"}, format="json")

    assert response.status_code == 202, response.json()
    revert = ScaleAction.objects.get(id=response.json()["id"])
    assert revert.status == ScaleAction.Status.SUCCEEDED, revert.error
    assert world.so_spec()["spec"] == original
    assert writes(world)[-1].body["spec"]["advanced"] is None  # a key the edit added is removed
    _, rows = audit_rows(f=AuditFilter(kinds=("autoscaler_policy",)))
    assert {r["id"] for r in rows} == {f"action-{edit['id']}", f"action-{revert.id}"}


def test_it_refuses_to_revert_a_scale_action(world, keda_deployment, run_on_commit):
    client = bot()
    scale = run_on_commit(
        client.post, f"/api/v1/deployments/{keda_deployment.id}/scale/", {"replicas": 3, "reason": "x"}, format="json"
    ).json()

    response = client.post(f"/api/v1/actions/{scale['id']}/revert/", {"reason": "undo"}, format="json")

    assert response.status_code == 409


def test_it_says_a_simulated_cluster_has_no_policy_to_edit(db):
    from tests.factories import AutoscalerFactory, ClusterFactory, ModelDeploymentFactory

    dep = ModelDeploymentFactory(cluster=ClusterFactory(backend="simulated", namespaces=["llm"]), namespace="llm")
    AutoscalerFactory(deployment=dep, kind=ReplicaOwnerKind.SCALEDOBJECT, name=dep.name)

    response = patch(bot(), dep, {"min_replicas": 2, "reason": "x", "dry_run": True})

    assert response.status_code == 409 and "Kubernetes clusters only" in response.json()["detail"]
    assert ScaleAction.objects.count() == 0


def test_it_recovers_a_policy_write_whose_answer_was_lost(world, keda_deployment):
    """The worker died after the PATCH landed: the next run finds the intended spec and records success."""
    from scaling.services import execution
    from scaling.services.actors import Actor
    from scaling.services.policy import autoscaler_policy_request
    from tests.factories import UserFactory

    action, _ = autoscaler_policy_request(
        deployment=keda_deployment,
        changes={"min_replicas": 3},
        reason="x",
        actor=Actor.of(UserFactory(role="operator")),
        source="api",
        dispatch=False,
    )
    real_write = execution._write

    def write_then_die(*args):
        real_write(*args)
        raise SystemExit("killed")

    execution._write = write_then_die
    try:
        with pytest.raises(SystemExit):
            execution.scale_action_execute(action_id=action.id)
    finally:
        execution._write = real_write
    ScaleAction.objects.filter(id=action.id).update(status=ScaleAction.Status.PENDING)

    done = execution.scale_action_execute(action_id=action.id)

    assert done.status == ScaleAction.Status.SUCCEEDED and "recovered" in done.notes[-1]
    assert len(writes(world)) == 1 and world.so_spec()["spec"]["minReplicaCount"] == 3
