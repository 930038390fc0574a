"""Advice through the API and the pages: trace uploads, a search run by the worker task with its
progress and result, cancelling, and the chart with its Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from advice import services
from advice.charts import pareto_front
from advice.models import AdviceRun, TraceUpload
from fleet.models import Cluster
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory
from tests.scaling.test_whatif import llama  # noqa: F401 - the demo world's KEDA-scaled llama-3-8b

SAMPLE = Path(__file__).resolve().parents[1] / "simulator" / "data" / "AzureLLMInferenceTrace_conv_first_10_minutes.csv"


@pytest.fixture(autouse=True)
def _traces_in_tmp(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def login(role: str = "viewer") -> Client:
    client = Client()
    client.force_login(UserFactory(username=role, role=role))
    return client


def upload(client: Client, content: bytes, name: str = "trace.csv"):
    return client.post("/api/v1/traces/", {"file": SimpleUploadedFile(name, content, "text/csv")})


def test_it_keeps_an_uploaded_trace_after_reading_it(db, tmp_path):
    response = upload(login(), SAMPLE.read_bytes(), "azure.csv")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "azure.csv" and body["requests"] > 1000 and body["bad_rows"] == 0
    assert Path(TraceUpload.objects.get().path).parent == tmp_path / "traces"


def test_it_refuses_a_malformed_trace_naming_the_line_and_keeps_nothing(db, tmp_path):
    response = upload(login(), b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,12\n")
    assert response.status_code == 400
    assert "line 2: expected 3 fields, found 2" in json.dumps(response.json())
    assert not TraceUpload.objects.exists() and not list((tmp_path / "traces").iterdir())


def test_it_runs_advice_in_the_task_and_serves_the_commands_json(llama, django_capture_on_commit_callbacks):  # noqa: F811
    client = login()
    trace_id = upload(client, SAMPLE.read_bytes()).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/advice/",
            {"deployment": llama.id, "trace": trace_id, "rate_multiplier": 5, "attainment": 0.95},
            content_type="application/json",
        )
    assert response.status_code == 202
    run = client.get(f"/api/v1/advice/{response.json()['id']}/").json()
    assert (run["status"], run["progress"]) == ("done", 1.0)
    assert set(run["result"]) == {"source", "objective", "hours", "recommended", "baselines", "candidates"}
    source = run["result"]["source"]
    assert (source["traffic"], source["model"]) == ("uploaded trace", "simulated world")
    assert len(run["result"]["candidates"]) >= 40 and run["result"]["recommended"]["attainment"] >= 0.95

    page = client.get(f"/advice/{run['id']}/").content.decode()
    assert "Recommended" in page and "seed ScaledObject" in page and '"Pareto front"' in page


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"attainment": 2}, "attainment is a fraction"),
        ({"hours": 500}, "hours must be above 0 and at most 168"),
        ({"spike": {"multiplier": -1}}, "the spike multiplier must be above 0"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_it_refuses_a_bad_request_and_stores_no_run(llama, body, message):  # noqa: F811
    response = login().post("/api/v1/advice/", {"deployment": llama.id, **body}, content_type="application/json")
    assert response.status_code == 400 and message in json.dumps(response.json())
    assert not AdviceRun.objects.exists()


def test_it_refuses_a_kubernetes_deployment_without_prometheus(db):
    deployment = ModelDeploymentFactory(
        cluster=ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, prometheus_url="")
    )
    response = login().post("/api/v1/advice/", {"deployment": deployment.id}, content_type="application/json")
    assert response.status_code == 400 and "prod has no Prometheus" in json.dumps(response.json())
    assert not AdviceRun.objects.exists()


def test_it_queues_a_kubernetes_deployment_with_prometheus(db):
    """Its history is read by the worker (tests/scaling/test_whatif_history.py); here only the start."""
    cluster = ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, prometheus_url="http://127.0.0.1:1")
    deployment = ModelDeploymentFactory(cluster=cluster)
    response = login().post("/api/v1/advice/", {"deployment": deployment.id}, content_type="application/json")
    assert response.status_code == 202 and AdviceRun.objects.filter(deployment=deployment).count() == 1


def test_it_cancels_a_queued_run_which_then_never_runs(llama):  # noqa: F811
    client = login()
    response = client.post("/api/v1/advice/", {"deployment": llama.id, "hours": 1}, content_type="application/json")
    run_id = response.json()["id"]  # not committed in this test's transaction: the task never ran
    assert client.post(f"/api/v1/advice/{run_id}/cancel/").json()["status"] == "cancelled"
    assert services.advice_execute(run_id=run_id) is None
    assert AdviceRun.objects.get(id=run_id).status == "cancelled"


def test_it_stops_a_running_search_at_the_next_candidate(llama, monkeypatch):  # noqa: F811
    user = UserFactory(username="someone", role="viewer")
    run = services.advice_start(
        user=user,
        deployment=llama,
        trace=None,
        hours=1,
        rate_multiplier=1.0,
        spike=None,
        slo=None,
        attainment=0.99,
        enqueue=lambda run_id: None,
    )
    real = services.advice_run

    def cancelled_meanwhile(**kwargs):
        AdviceRun.objects.filter(id=run.id).update(cancel_requested=True)  # someone pressed Cancel
        return real(**kwargs)

    monkeypatch.setattr(services, "advice_run", cancelled_meanwhile)
    assert services.advice_execute(run_id=run.id).status == "cancelled"


def test_it_lets_only_the_owner_or_an_operator_cancel(llama):  # noqa: F811
    owner = UserFactory(username="owner", role="viewer")
    run = services.advice_start(
        user=owner,
        deployment=llama,
        trace=None,
        hours=1,
        rate_multiplier=1.0,
        spike=None,
        slo=None,
        attainment=0.99,
        enqueue=lambda run_id: None,
    )
    assert login("viewer").post(f"/api/v1/advice/{run.id}/cancel/").status_code == 403
    assert login("operator").post(f"/api/v1/advice/{run.id}/cancel/").status_code == 200


def test_it_shows_a_progress_bar_and_a_cancel_button_while_running(llama):  # noqa: F811
    run = services.advice_start(
        user=UserFactory(username="a", role="viewer"),
        deployment=llama,
        trace=None,
        hours=1,
        rate_multiplier=1.0,
        spike=None,
        slo=None,
        attainment=0.99,
        enqueue=lambda run_id: None,
    )
    AdviceRun.objects.filter(id=run.id).update(status="running", progress=0.4)
    page = login().get(f"/advice/{run.id}/").content.decode()
    assert '<progress max="100" value="40"' in page and "Cancel</button>" in page


def test_it_starts_advice_from_the_page_with_an_uploaded_trace(llama):  # noqa: F811
    response = login().post(
        f"/advice/deployments/{llama.id}/",
        {"trace": SimpleUploadedFile("t.csv", SAMPLE.read_bytes(), "text/csv"), "attainment": "0.95"},
    )
    assert response.status_code == 302
    run = AdviceRun.objects.get()
    assert run.trace.requests > 1000 and run.attainment == 0.95


def test_it_shows_a_bad_number_on_the_page_and_starts_nothing(llama):  # noqa: F811
    response = login().post(f"/advice/deployments/{llama.id}/", {"hours": "lots"})
    assert response.status_code == 400 and "hours must be a number" in response.content.decode()
    assert not AdviceRun.objects.exists()


def test_it_draws_the_pareto_front_as_the_candidates_no_other_beats():
    candidates = [
        {"label": name, "gpu_hours": g, "slo_violation_minutes": v}
        for name, g, v in [("a", 1, 50), ("b", 2, 60), ("c", 2, 10), ("d", 3, 10), ("e", 4, 0)]
    ]
    assert [c["label"] for c in pareto_front(candidates)] == ["a", "c", "e"]


def test_it_accepts_a_trace_larger_than_the_apis_usual_body_limit(db, settings):
    rows = "".join(f"{i * 0.01:.2f},800,200\n" for i in range(100_000))  # ~1.7 MB
    content = ("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows).encode()
    assert len(content) > settings.SCALEDECK_API_MAX_BODY_BYTES
    response = upload(login(), content)
    assert response.status_code == 201 and response.json()["requests"] == 100_000
