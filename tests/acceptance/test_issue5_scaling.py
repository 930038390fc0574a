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

import contextlib
import io
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from costing.services import price_catalog_seed
from fleet.models import ModelDeployment
from tests.fakekube import objects as k
from tests.fakekube.server import FakeKubeApi

pytestmark = pytest.mark.django_db(transaction=True)

NS = "llm"
MERGE_PATCH = "application/merge-patch+json"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"

KEDA_PATH = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/llama-8b"
KEDA_HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/keda-hpa-llama-8b"
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/mistral-7b-hpa"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/qwen-7b/scale"


def _with_pods(deploy: dict, node: str = "h100-a") -> list[dict]:
    rs = k.replicaset(deploy)
    ready = deploy["status"]["readyReplicas"]
    return [deploy, rs, *k.pods_of(deploy, rs, [("ready", node, "")] * ready)]


def _vllm(name: str, replicas: int) -> dict:
    return k.deployment(
        NS, name, containers=[k.vllm_container(model=f"org/{name}", gpus=1)], replicas=replicas, ready=replicas
    )


def issue5_world() -> list[dict]:
    """One H100 node (8 GPUs, p5.48xlarge on-demand) running, in namespace llm, one GPU per replica:

    - llama-8b: 2 replicas, KEDA ScaledObject llama-8b (min 1, max 8) and KEDA's keda-hpa-llama-8b;
    - mistral-7b: 2 replicas, HPA mistral-7b-hpa (min 2, max 6);
    - qwen-7b: 1 replica, no autoscaler;
    - phi-3: 1 replica, both HPA phi-3-cpu and ScaledObject phi-3 (a conflict);
    - ResourceQuota gpu-quota: requests.nvidia.com/gpu 12 hard, 6 used.
    """
    llama = _vllm("llama-8b", 2)
    so = k.scaled_object(NS, "llama-8b", target="llama-8b", min_replicas=1, max_replicas=8)
    mistral = _vllm("mistral-7b", 2)
    qwen = _vllm("qwen-7b", 1)
    phi = _vllm("phi-3", 1)
    return [
        k.gpu_node("h100-a"),
        *_with_pods(llama),
        so,
        k.keda_hpa(so),
        *_with_pods(mistral),
        k.hpa(NS, "mistral-7b-hpa", target="mistral-7b", min_replicas=2, max_replicas=6),
        *_with_pods(qwen),
        *_with_pods(phi),
        k.hpa(NS, "phi-3-cpu", target="phi-3", min_replicas=1, max_replicas=3),
        k.scaled_object(NS, "phi-3", target="phi-3", min_replicas=1, max_replicas=4),
        k.resource_quota(
            NS, "gpu-quota", hard={"requests.nvidia.com/gpu": "12"}, used={"requests.nvidia.com/gpu": "6"}
        ),
    ]


def manage(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def token_for(user: str, role: str) -> str:
    return manage("apitoken_create", "--user", user, "--role", role, "--name", f"{user}-bot").strip().splitlines()[-1]


@dataclass
class Setup:
    kube: FakeKubeApi
    operator: Client
    viewer: Client
    anonymous: Client
    ids: dict[str, int]

    def scale(self, name: str, body: object, *, client: Client | None = None, raw: str | None = None, **headers):
        data = raw if raw is not None else json.dumps(body)
        return (client or self.operator).post(
            f"/api/v1/deployments/{self.ids[name]}/scale/", data, content_type="application/json", **headers
        )

    def writes(self) -> list:
        return [r for r in self.kube.requests if r.method != "GET"]

    def patches_to(self, path: str) -> list:
        return [r for r in self.kube.requests if r.method == "PATCH" and r.path == path]

    def rv(self, kind: str, name: str) -> str:
        return self.kube.get(kind, NS, name)["metadata"]["resourceVersion"]


def _client(token: str | None) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}") if token else Client()


@pytest.fixture
def setup(fake_kube: FakeKubeApi, fake_kubeconfig) -> Setup:
    price_catalog_seed()  # what the costing migration loads; tests run without migrations
    fake_kube.load(issue5_world())
    manage("cluster_add", "prod", "--kubeconfig", str(fake_kubeconfig), "--namespaces", NS)
    manage("cluster_sync", "prod")
    ids = dict(ModelDeployment.objects.filter(cluster__name="prod").values_list("name", "id"))
    assert set(ids) == {"llama-8b", "mistral-7b", "qwen-7b", "phi-3"}, ids
    operator = _client(token_for("olga", "operator"))
    viewer = _client(token_for("victor", "viewer"))
    fake_kube.clear_requests()
    return Setup(kube=fake_kube, operator=operator, viewer=viewer, anonymous=Client(), ids=ids)


def action(setup: Setup, action_id: int) -> dict:
    response = setup.viewer.get(f"/api/v1/actions/{action_id}/")
    assert response.status_code == 200, response.content
    return response.json()


def rule(setup: Setup, name: str, cron: str, floor: int, minutes: int, client: Client | None = None):
    return (client or setup.operator).post(
        "/api/v1/prescale-rules/",
        {"deployment": setup.ids[name], "cron": cron, "timezone": "UTC", "min_replicas": floor,
         "duration_minutes": minutes},
        content_type="application/json",
    )


def tick_at(when: datetime) -> str:
    with time_machine.travel(when, tick=False):
        return manage("scaling_tick")


# --------------------------------------------------------------------------- the right PATCH, and nothing else


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
    forged = setup.scale("llama-8b", {"replicas": 4, "reason": "r"}, client=_client("not-a-token"))

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
    assert body["detail"] == (
        "9 more replicas need 9 nvidia.com/gpu but quota gpu-quota has 6 left (6 of 12 used)"
    )
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


# --------------------------------------------------------------------------- pre-scale rules and scaling_tick

# A Monday, 09:00:20 UTC: the rule below ("0 9 * * *", 60 min) is due.
DUE = datetime(2026, 3, 2, 9, 0, 20, tzinfo=UTC)

RULE_TARGETS = [
    # (deployment, path written, field in the body, floor, baseline)
    ("llama-8b", KEDA_PATH, ("spec", "minReplicaCount"), 5, 1),
    ("mistral-7b", HPA_PATH, ("spec", "minReplicas"), 5, 2),
    ("qwen-7b", SCALE_PATH, ("spec", "replicas"), 4, 1),
]


@pytest.mark.parametrize(("name", "path", "field", "floor", "baseline"), RULE_TARGETS,
                         ids=[t[0] for t in RULE_TARGETS])
def test_a_prescale_rule_due_now_is_applied_by_scaling_tick_and_restored_after_its_duration(
    setup, name, path, field, floor, baseline
):
    with time_machine.travel(DUE - timedelta(minutes=5), tick=False):
        created = rule(setup, name, "0 9 * * *", floor, 60)
        assert created.status_code == 201, created.json()
        assert created.json()["next_firings"][0]["utc"] == "2026-03-02T09:00:00+00:00"
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    with time_machine.travel(DUE, tick=False):
        out = manage("scaling_tick")
        assert "succeeded" in out, out
        [applied] = setup.writes()
        assert applied.method == "PATCH" and applied.path == path
        assert applied.content_type.split(";")[0] == MERGE_PATCH
        assert applied.body[field[0]] == {field[1]: floor}
        assert "resourceVersion" in applied.body["metadata"]

        setup.kube.clear_requests()
        assert "nothing due" in manage("scaling_tick")  # the same firing is never applied twice
    with time_machine.travel(DUE + timedelta(minutes=30), tick=False):
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    with time_machine.travel(DUE + timedelta(minutes=60, seconds=5), tick=False):
        out = manage("scaling_tick")
        assert "succeeded" in out, out
        [restored] = setup.writes()
        assert restored.path == path and restored.content_type.split(";")[0] == MERGE_PATCH
        assert restored.body[field[0]] == {field[1]: baseline}
        setup.kube.clear_requests()
        assert "nothing due" in manage("scaling_tick")
    assert setup.writes() == []

    audit = setup.viewer.get("/api/v1/actions/", {"deployment": setup.ids[name]}).json()["results"]
    assert [(a["operation"], a["source"], a["status"]) for a in audit] == [
        ("restore", "expiry", "succeeded"),
        ("scale", "rule", "succeeded"),
    ]


def test_overlapping_windows_take_the_highest_floor_and_step_back_down(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 4, 60).status_code == 201
        assert rule(setup, "llama-8b", "30 9 * * *", 6, 60).status_code == 201

    def floors_written_at(when: datetime) -> list:
        setup.kube.clear_requests()
        tick_at(when)
        return [r.body["spec"]["minReplicaCount"] for r in setup.writes()]

    assert floors_written_at(datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)) == [4]
    assert floors_written_at(datetime(2026, 3, 2, 9, 30, 10, tzinfo=UTC)) == [6]
    assert floors_written_at(datetime(2026, 3, 2, 10, 0, 10, tzinfo=UTC)) == []  # 6 still holds until 10:30
    assert floors_written_at(datetime(2026, 3, 2, 10, 30, 10, tzinfo=UTC)) == [1]
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 1


def test_a_firing_missed_while_workers_were_down_is_applied_late_once_and_not_after_its_window(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "mistral-7b", "0 9 * * *", 5, 60).status_code == 201

    out = tick_at(DUE + timedelta(minutes=40))  # nobody ticked at 09:00

    assert "applied 40 min late" in setup.viewer.get("/api/v1/actions/").json()["results"][0]["reason"], out
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicas": 5}]
    setup.kube.clear_requests()
    assert "nothing due" in tick_at(DUE + timedelta(minutes=45))
    tick_at(DUE + timedelta(minutes=61))
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicas": 2}]

    setup.kube.clear_requests()
    # The next day nobody ticks during the window at all: the firing is simply gone.
    assert "nothing due" in tick_at(DUE + timedelta(days=1, minutes=61))
    assert setup.writes() == []


def test_a_permanent_floor_set_during_a_window_is_what_the_window_ends_on(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    tick_at(DUE)
    setup.kube.clear_requests()

    with time_machine.travel(DUE + timedelta(minutes=10), tick=False):
        response = setup.scale("llama-8b", {"replicas": 3, "reason": "new normal"})
    assert response.status_code == 202
    done = action(setup, response.json()["id"])
    assert done["after"] == {"min_replicas": 5}
    assert "min_replicas is 5, not 3: a higher floor is active" in done["notes"]
    assert setup.writes() == []

    tick_at(DUE + timedelta(minutes=61))
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 3}]


def test_rule_writes_are_refused_to_viewers_and_bad_rules_are_400(setup):
    assert rule(setup, "llama-8b", "0 9 * * *", 4, 60, client=setup.viewer).status_code == 403
    bad_cron = rule(setup, "llama-8b", "0 25 * * *", 4, 60)
    assert bad_cron.status_code == 400 and "cron" in bad_cron.json()
    above_max = rule(setup, "llama-8b", "0 9 * * *", 9, 60)
    assert above_max.status_code == 400 and "above the autoscaler's max (8)" in above_max.json()["min_replicas"][0]
    zero_hpa = rule(setup, "mistral-7b", "0 9 * * *", 0, 60)
    assert zero_hpa.status_code == 400 and "at least 1" in zero_hpa.json()["min_replicas"][0]
    conflict = rule(setup, "phi-3", "0 9 * * *", 2, 60)
    assert conflict.status_code == 400 and "fight over its replicas" in conflict.json()["deployment"][0]
    assert setup.viewer.get("/api/v1/prescale-rules/").json()["count"] == 0
    assert setup.kube.requests == []


def test_three_ticks_at_once_apply_a_firing_once(setup):
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    outputs: list[str] = []
    start = threading.Barrier(3)

    def tick():
        try:
            start.wait()
            outputs.append(manage("scaling_tick"))
        finally:
            connection.close()

    with time_machine.travel(DUE, tick=True):
        threads = [threading.Thread(target=tick) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(outputs) == 3 and outputs.count("nothing due\n") == 2, outputs
    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(KEDA_PATH, {"minReplicaCount": 5})]


# --------------------------------------------------------------------------- time-boxed overrides


def test_a_ttl_override_is_restored_when_it_expires(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        response = setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 120})
        assert response.status_code == 202, response.json()
        assert response.json()["expires_at"].startswith("2026-03-02T14:00:00")
    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 6}]
    setup.kube.clear_requests()

    with time_machine.travel(start + timedelta(minutes=119), tick=False):
        assert "nothing due" in manage("scaling_tick")
    with time_machine.travel(start + timedelta(minutes=120, seconds=1), tick=False):
        out = manage("scaling_tick")
    assert "min_replicas 6 -> 1" in out, out
    [restore] = setup.writes()
    assert restore.path == KEDA_PATH and restore.content_type.split(";")[0] == MERGE_PATCH
    assert restore.body["spec"] == {"minReplicaCount": 1}
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 1


def test_a_value_changed_by_someone_else_meanwhile_is_left_and_the_audit_says_so(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    # Someone edits the ScaledObject by hand (kubectl, GitOps) while the override is on.
    edited = setup.kube.get("ScaledObject", NS, "llama-8b")
    edited["spec"]["minReplicaCount"] = 3
    del edited["metadata"]["resourceVersion"]
    setup.kube.load(edited)
    setup.kube.clear_requests()

    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        out = manage("scaling_tick")

    assert setup.writes() == []
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 3
    [restore] = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert restore["status"] == "succeeded" and restore["fields"] == []
    assert restore["notes"][-1] == "left as is: changed by someone else since (min_replicas is 3, we wrote 6)"
    assert "left as is" in out


def test_a_restore_that_failed_is_tried_again_later_until_it_succeeds(setup):
    # Found by this suite: a restore that failed (API down or refusing at the expiry) was never
    # tried again, so the "for 1h" floor stayed up for good.
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    with pytest.raises(CommandError, match="1 of 1 actions did not succeed"):
        tick_at(start + timedelta(minutes=61))
    assert "nothing due" in tick_at(start + timedelta(minutes=62))  # not hammered every tick
    setup.kube.reset_switches()
    setup.kube.clear_requests()
    tick_at(start + timedelta(minutes=67))

    assert [r.body["spec"] for r in setup.writes()] == [{"minReplicaCount": 1}]
    restores = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert [r["status"] for r in restores] == ["succeeded", "failed"]
    assert "try 2 of 5" in restores[0]["reason"]


def test_a_restore_that_keeps_failing_is_given_up_after_five_tries(setup):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert setup.scale("llama-8b", {"replicas": 6, "reason": "launch", "ttl_minutes": 60}).status_code == 202
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    for i in range(8):
        with contextlib.suppress(CommandError):  # each failed try exits non-zero
            tick_at(start + timedelta(minutes=61 + 6 * i))

    assert len(setup.patches_to(KEDA_PATH)) == 1 + 5
    restores = setup.viewer.get("/api/v1/actions/", {"source": "expiry"}).json()["results"]
    assert [r["status"] for r in restores] == ["failed"] * 5
    assert "forbidden" in restores[0]["error"]


# --------------------------------------------------------------------------- optimistic concurrency


def test_a_409_conflict_is_reread_and_retried(setup):
    setup.kube.fail(KEDA_PATH, 409, method="PATCH", times=1)

    response = setup.scale("llama-8b", {"replicas": 5, "reason": "r"})

    assert response.status_code == 202
    calls = [(r.method, r.path) for r in setup.kube.requests]
    assert calls == [("GET", KEDA_PATH), ("PATCH", KEDA_PATH), ("GET", KEDA_PATH), ("PATCH", KEDA_PATH)]
    first, second = setup.patches_to(KEDA_PATH)
    assert first.body == second.body
    assert setup.kube.get("ScaledObject", NS, "llama-8b")["spec"]["minReplicaCount"] == 5
    done = action(setup, response.json()["id"])
    assert done["status"] == "succeeded" and done["after"] == {"min_replicas": 5}


def test_a_conflict_that_keeps_coming_fails_the_action_with_a_clear_error(setup):
    setup.kube.fail(KEDA_PATH, 409, method="PATCH")

    response = setup.scale("llama-8b", {"replicas": 5, "reason": "r"})

    assert response.status_code == 202
    assert len(setup.patches_to(KEDA_PATH)) == 3
    done = action(setup, response.json()["id"])
    assert done["status"] == "failed" and "409 Conflict 3 times" in done["error"]
    assert done["response"]["code"] == 409


# --------------------------------------------------------------------------- retries and the broker


def test_an_idempotency_key_makes_a_retried_request_return_the_first_action(setup):
    first = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"}, HTTP_IDEMPOTENCY_KEY="chat-4711")
    again = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"}, HTTP_IDEMPOTENCY_KEY="chat-4711")

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert len(setup.writes()) == 1


def test_a_broker_outage_still_answers_202_and_the_reconciler_applies_it_later(setup):
    # Found by this suite: the enqueue failed inside on_commit and the API answered 500 for an
    # action it had already stored, inviting a retry that would create a second one.
    from config.celery import app
    from tests.conftest import _use_broker

    old_broker = app.conf.broker_url
    app.conf.task_always_eager = False
    _use_broker(app, "redis://127.0.0.1:9/0")  # nothing listens there
    try:
        start = datetime.now(UTC)
        with time_machine.travel(start, tick=False):
            response = setup.scale("qwen-7b", {"replicas": 2, "reason": "r"})
    finally:
        _use_broker(app, old_broker)
        app.conf.task_always_eager = True

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert setup.writes() == []

    out = tick_at(start + timedelta(seconds=61))  # the reconciler's pass, run by hand

    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(SCALE_PATH, {"replicas": 2})]
    assert action(setup, response.json()["id"])["status"] == "succeeded", out


# --------------------------------------------------------------------------- found in review (issue 5 follow-up)


def test_a_failed_firing_is_tried_again_by_a_later_tick_while_its_window_is_open(setup):
    # Found in review: a failed firing was never tried again (its key returned the failed action).
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        assert rule(setup, "llama-8b", "0 9 * * *", 5, 60).status_code == 201
    setup.kube.fail(KEDA_PATH, 403, method="PATCH")

    with pytest.raises(CommandError, match="1 of 1 actions did not succeed"):
        tick_at(DUE)
    assert "nothing due" in tick_at(DUE + timedelta(seconds=30))  # not hammered every tick
    setup.kube.reset_switches()
    setup.kube.clear_requests()
    out = tick_at(DUE + timedelta(seconds=65))

    assert "succeeded" in out, out
    assert [(r.path, r.body["spec"]) for r in setup.writes()] == [(KEDA_PATH, {"minReplicaCount": 5})]
    firings = setup.viewer.get("/api/v1/actions/", {"source": "rule"}).json()["results"]
    assert [f["status"] for f in firings] == ["succeeded", "failed"]
    assert "try 2 of 5" in firings[0]["reason"] and "forbidden" in firings[0]["reason"]
    setup.kube.clear_requests()
    assert "nothing due" in tick_at(DUE + timedelta(minutes=5))  # applied once
    assert setup.writes() == []


def test_a_dry_run_floor_on_a_pinned_scaledobject_costs_what_the_pin_runs_and_says_so(setup):
    # Found in review: the preview priced the floor as if KEDA would act on it while paused.
    assert setup.scale("llama-8b", {"replicas": 2, "reason": "freeze", "mode": "pin"}).status_code == 202
    setup.kube.clear_requests()

    response = setup.scale("llama-8b", {"replicas": 6, "reason": "what if", "dry_run": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["after"] == {"min_replicas": 6}
    assert body["replicas"] == {"before": 2, "after": 2}
    assert body["cost_per_hour_usd"] == {"before": "13.76", "after": "13.76"}
    assert body["pinned"] == {"replicas": 2, "replicas_when_unpinned": 6, "cost_per_hour_usd_when_unpinned": "41.28"}
    [note] = [n for n in body["notes"] if n.startswith("no effect while pinned")]
    assert PAUSED_REPLICAS in note and "mode pin" in note
    assert setup.writes() == []


def test_a_request_counts_gpus_promised_to_actions_not_yet_applied(setup):
    # Found in review: two requests in flight could together pass the namespace quota.
    from config.celery import app
    from tests.conftest import _use_broker

    old_broker = app.conf.broker_url
    app.conf.task_always_eager = False
    _use_broker(app, "redis://127.0.0.1:9/0")  # no worker picks anything up: the first stays pending
    try:
        first = setup.scale("qwen-7b", {"replicas": 5, "reason": "r"})  # +4 of the 6 left
        second = setup.scale("mistral-7b", {"replicas": 5, "reason": "r"})  # +3: only 2 left
    finally:
        _use_broker(app, old_broker)
        app.conf.task_always_eager = True

    assert first.status_code == 202 and first.json()["status"] == "pending"
    assert second.status_code == 409
    assert second.json()["detail"] == (
        "3 more replicas need 3 nvidia.com/gpu but quota gpu-quota has 2 left "
        "(6 of 12 used, 4 promised to 1 action in flight)"
    )
    assert setup.writes() == []
