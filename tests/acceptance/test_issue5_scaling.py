"""Issue 5, checked the way its "How it will be checked" says, from the outside.

A cluster is registered with `manage.py cluster_add --kubeconfig ... --namespaces llm` and synced
with `manage.py cluster_sync` from the fake Kubernetes API, which serves a KEDA-scaled, an
HPA-scaled and a plain vLLM deployment (plus KEDA's own keda-hpa-* HPA, a deployment fought over
by an HPA and a ScaledObject, and a GPU ResourceQuota). Bots hold Bearer tokens from
`manage.py apitoken_create`. Everything then goes through the REST API and `manage.py
scaling_tick`, and the assertions are on the requests the fake API recorded: the right PATCH on
the right object with the right value and content type, and nothing else.

The database is really committed (transactional_db), so scale actions reach the (eager) Celery
task through `transaction.on_commit`, as they do in production.
"""

from __future__ import annotations

import pytest

from fleet.models import ModelDeployment
from tests.acceptance.issue5_world import (
    HPA_PATH,
    KEDA_HPA_PATH,
    KEDA_PATH,
    MERGE_PATCH,
    NS,
    PAUSED_REPLICAS,
    SCALE_PATH,
    action,
    bot_client,
    manage,
)

# --------------------------------------------------------------------------- the right PATCH, and nothing else

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_keda_floor_is_one_merge_patch_of_the_scaledobjects_min_replica_count(setup):
    rv = setup.rv("ScaledObject", "llama-8b")

    response = setup.scale("llama-8b", {"replicas": 6, "reason": "launch"})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["target"] == {"kind": "scaledobject", "name": "llama-8b"}
    assert body["before"] == {"min_replicas": 1} and body["after"] == {"min_replicas": 6}
    [patch] = setup.writes()
    assert patch.method == "PATCH" and patch.path == KEDA_PATH
    assert patch.content_type.split(";")[0] == MERGE_PATCH
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": {"minReplicaCount": 6}}
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 6
    assert setup.kube.get("Deployment", NS, "llama-8b")["spec"]["replicas"] == 2  # the autoscaler's to change
    done = action(setup, body["id"])
    assert done["status"] == "succeeded" and done["fields"] == ["spec.minReplicaCount"]
    assert done["response"]["code"] == 200


def test_a_keda_pin_is_the_paused_replicas_annotation(setup):
    rv = setup.rv("ScaledObject", "llama-8b")

    response = setup.scale("llama-8b", {"replicas": 3, "reason": "freeze for the demo", "mode": "pin"})

    assert response.status_code == 202, response.json()
    [patch] = setup.writes()
    assert patch.path == KEDA_PATH and patch.content_type.split(";")[0] == MERGE_PATCH
    assert patch.body == {"metadata": {"resourceVersion": rv, "annotations": {PAUSED_REPLICAS: "3"}}}
    stored = setup.kube.get("ScaledObject", NS, "llama-8b")
    assert stored["metadata"]["annotations"][PAUSED_REPLICAS] == "3"
    assert stored["spec"]["minReplicaCount"] == 1


def test_an_hpa_floor_is_one_merge_patch_of_min_replicas(setup):
    rv = setup.rv("HorizontalPodAutoscaler", "mistral-7b-hpa")

    response = setup.scale("mistral-7b", {"replicas": 4, "reason": "peak"})

    assert response.status_code == 202, response.json()
    assert response.json()["target"] == {"kind": "hpa", "name": "mistral-7b-hpa"}
    [patch] = setup.writes()
    assert patch.path == HPA_PATH and patch.content_type.split(";")[0] == MERGE_PATCH
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": {"minReplicas": 4}}
    assert setup.kube.get("HorizontalPodAutoscaler", NS, "mistral-7b-hpa")["spec"]["minReplicas"] == 4


def test_a_plain_deployment_is_scaled_through_its_scale_subresource(setup):
    rv = setup.rv("Deployment", "qwen-7b")

    response = setup.scale("qwen-7b", {"replicas": 3, "reason": "more"})

    assert response.status_code == 202, response.json()
    assert response.json()["target"] == {"kind": "deployment", "name": "qwen-7b"}
    [patch] = setup.writes()
    assert patch.path == SCALE_PATH and patch.content_type.split(";")[0] == MERGE_PATCH
    assert patch.body == {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}}
    assert setup.kube.get("Deployment", NS, "qwen-7b")["spec"]["replicas"] == 3


def test_autoscaled_deployments_and_kedas_own_hpa_are_never_written(setup):
    for name, body in [
        ("llama-8b", {"replicas": 5, "reason": "a"}),
        ("llama-8b", {"replicas": 4, "reason": "b", "mode": "pin"}),
        ("mistral-7b", {"replicas": 5, "reason": "c"}),
        ("mistral-7b", {"replicas": 3, "reason": "d", "mode": "pin"}),
        ("llama-8b", {"replicas": 7, "reason": "e", "ttl_minutes": 30}),
    ]:
        assert setup.scale(name, body).status_code == 202

    paths = {r.path for r in setup.writes()}
    assert paths == {KEDA_PATH, HPA_PATH}
    assert not setup.kube.requests_to(KEDA_HPA_PATH)
    assert not [r for r in setup.writes() if "/deployments/" in r.path]


# --------------------------------------------------------------------------- refusals write nothing


BAD_INPUT = [
    # (case, body, field, words the message must contain)
    ("negative replicas", {"replicas": -1, "reason": "r"}, "replicas", "greater than or equal to 0"),
    ("replicas not a number", {"replicas": "six", "reason": "r"}, "replicas", "valid integer"),
    ("replicas a fraction", {"replicas": 2.5, "reason": "r"}, "replicas", "valid integer"),
    ("no reason", {"replicas": 2}, "reason", "required"),
    ("empty reason", {"replicas": 2, "reason": ""}, "reason", "blank"),
    ("blank reason", {"replicas": 2, "reason": "   "}, "reason", "blank"),
    ("a typo", {"replica": 2, "reason": "r"}, "replica", "unknown field 'replica'"),
    ("unknown mode", {"replicas": 2, "reason": "r", "mode": "max"}, "mode", '"max" is not a valid choice'),
    ("zero ttl", {"replicas": 2, "reason": "r", "ttl_minutes": 0}, "ttl_minutes", "greater than or equal to 1"),
    ("not an object", [{"replicas": 2, "reason": "r"}], "non_field_errors", "JSON object"),
]


@pytest.mark.parametrize(("case", "body", "field", "words"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_answers_400_naming_the_field_and_writes_nothing(setup, case, body, field, words):
    response = setup.scale("llama-8b", body)

    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert words in " ".join(errors[field]), errors
    assert setup.kube.requests == []


def test_malformed_json_answers_400_and_writes_nothing(setup):
    response = setup.scale("llama-8b", None, raw='{"replicas": 2, "reason": ')

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert setup.kube.requests == []


def test_a_viewer_token_gets_403_and_no_token_401_and_nothing_is_written(setup):
    as_viewer = setup.scale("llama-8b", {"replicas": 4, "reason": "r"}, client=setup.viewer)
    anonymous = setup.scale("llama-8b", {"replicas": 4, "reason": "r"}, client=setup.anonymous)
    forged = setup.scale("llama-8b", {"replicas": 4, "reason": "r"}, client=bot_client("not-a-token"))

    assert as_viewer.status_code == 403 and "role does not allow" in as_viewer.json()["detail"]
    assert anonymous.status_code == 401 and "credentials were not provided" in anonymous.json()["detail"]
    assert forged.status_code == 401 and "Invalid or revoked token" in forged.json()["detail"]
    assert setup.kube.requests == []


def test_replicas_above_the_autoscaler_max_are_refused_with_409_unless_raise_max(setup):
    refused = setup.scale("llama-8b", {"replicas": 9, "reason": "r"})

    assert refused.status_code == 409
    body = refused.json()
    assert "above the autoscaler's max (8)" in body["detail"] and "raise_max" in body["detail"]
    assert body["max_replicas"] == 8 and body["requested"] == 9
    assert setup.writes() == []
    assert action(setup, body["action_id"])["status"] == "rejected"

    raised = setup.scale("mistral-7b", {"replicas": 7, "reason": "r", "raise_max": True})
    assert raised.status_code == 202, raised.json()
    [patch] = setup.writes()
    assert patch.path == HPA_PATH and patch.body["spec"] == {"minReplicas": 7, "maxReplicas": 7}


def test_a_request_beyond_the_namespace_gpu_quota_is_refused_with_the_numbers(setup):
    response = setup.scale("qwen-7b", {"replicas": 10, "reason": "r"})

    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == ("9 more replicas need 9 nvidia.com/gpu but quota gpu-quota has 6 left (6 of 12 used)")
    assert (body["hard"], body["used"], body["available"], body["needed"]) == (12, 6, 6, 9)
    # An autoscaler's floor is held to the quota too, raise_max or not.
    floor = setup.scale("mistral-7b", {"replicas": 9, "reason": "r", "raise_max": True})
    assert floor.status_code == 409
    assert floor.json()["detail"] == (
        "7 more replicas need 7 nvidia.com/gpu but quota gpu-quota has 6 left (6 of 12 used)"
    )
    assert setup.kube.requests == []


def test_raise_max_only_raises_a_ceiling_already_above_the_request_stays(setup):
    # Found by this suite: a permanent request with raise_max lowered the max to the request.
    hpa = setup.scale("mistral-7b", {"replicas": 3, "reason": "r", "raise_max": True})
    keda = setup.scale("llama-8b", {"replicas": 0, "reason": "r", "raise_max": True})

    assert hpa.status_code == keda.status_code == 202
    assert action(setup, hpa.json()["id"])["status"] == "succeeded"
    assert action(setup, keda.json()["id"])["status"] == "succeeded"
    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [
        (HPA_PATH, {"minReplicas": 3}),
        (KEDA_PATH, {"minReplicaCount": 0}),
    ]
    assert setup.kube.get("HorizontalPodAutoscaler", NS, "mistral-7b-hpa")["spec"]["maxReplicas"] == 6
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["maxReplicaCount"] == 8


@pytest.mark.parametrize("mode", ["floor", "pin"])
def test_an_hpa_cannot_be_given_zero_replicas_and_nothing_is_written(setup, mode):
    # Found by this suite: a floor of 0 was accepted, PATCHed, and refused by the API server (422).
    response = setup.scale("mistral-7b", {"replicas": 0, "reason": "r", "mode": mode})

    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith("an HPA cannot be") and "must be at least 1" in body["detail"]
    assert body["replicas"] == [body["detail"]]
    assert setup.kube.requests == []


def test_a_deployment_fought_over_by_an_hpa_and_a_scaledobject_is_refused(setup):
    response = setup.scale("phi-3", {"replicas": 2, "reason": "r"})

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "HPA phi-3-cpu" in detail and "ScaledObject phi-3" in detail and "remove one" in detail
    assert setup.kube.requests == []


def test_a_namespace_outside_the_allow_list_is_refused(setup, fake_kube, tmp_path):
    # The same cluster registered read-only (no --namespaces): it may read everything, change nothing.
    kubeconfig = fake_kube.kubeconfig(tmp_path / "readonly-kubeconfig")
    manage("cluster_add", "prod-readonly", "--kubeconfig", str(kubeconfig))
    manage("cluster_sync", "prod-readonly")
    readonly = ModelDeployment.objects.get(cluster__name="prod-readonly", name="qwen-7b")
    fake_kube.clear_requests()

    response = setup.operator.post(
        f"/api/v1/deployments/{readonly.id}/scale/", {"replicas": 2, "reason": "r"}, content_type="application/json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "namespace llm is not in this cluster's allow-list: ScaleDeck may not change it"
    )
    assert fake_kube.requests == []


def test_a_dry_run_answers_200_with_the_cost_per_hour_and_writes_nothing(setup):
    response = setup.scale("llama-8b", {"replicas": 6, "reason": "what if", "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True
    assert body["target"] == {"kind": "scaledobject", "name": "llama-8b"}
    assert body["fields"] == ["spec.minReplicaCount"] and body["after"] == {"min_replicas": 6}
    assert body["replicas"] == {"before": 2, "after": 6}
    # p5.48xlarge on-demand in us-east-1: $55.04/h for 8 H100s, $6.88 per GPU, one GPU per replica.
    assert body["cost_per_hour_usd"] == {"before": "13.76", "after": "41.28"}
    assert body["quota"][0]["available_after"] == 2
    assert setup.kube.requests == []
    assert setup.viewer.get("/api/v1/actions/").json()["count"] == 0
