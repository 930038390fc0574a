"""The advisor for a deployment: `manage.py whatif --advise --json` on a trace, and its refusals."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.errors import ApplicationError
from fleet.models import Cluster
from scaling.advice import advice_run
from tests.factories import ClusterFactory, ModelDeploymentFactory
from tests.scaling.test_whatif import llama  # noqa: F401 - the demo world's KEDA-scaled llama-3-8b

SAMPLE = Path(__file__).resolve().parents[1] / "simulator" / "data" / "AzureLLMInferenceTrace_conv_first_10_minutes.csv"
CANDIDATE_KEYS = {"label", "policy", "slo_violation_minutes", "attainment", "gpu_hours", "cost_usd"}


def advise(*args) -> dict:
    out, err = StringIO(), StringIO()
    call_command("whatif", *args, "--advise", "--json", stdout=out, stderr=err)
    assert err.getvalue() == ""
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def advice(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        from fleet.world_store import DbWorldStore
        from simulator import World
        from tests.scaling.test_whatif import _demo_state

        cluster = ClusterFactory(
            name="advice-demo", backend=Cluster.Backend.SIMULATED, kubeconfig_path="", namespaces=["llm-prod"]
        )
        DbWorldStore(cluster).replace(World.from_dict(_demo_state()), seed=3)
        deployment = ModelDeploymentFactory(
            cluster=cluster, namespace="llm-prod", name="llama-3-8b", ttft_slo_seconds=2.0
        )
        try:
            yield advise(str(deployment.id), "--trace", str(SAMPLE), "--rate-multiplier", "5", "--attainment", "0.95")
        finally:
            cluster.delete()


def test_it_prints_the_contracts_json_with_baselines_and_at_least_40_candidates(advice):
    assert set(advice) == {"source", "objective", "hours", "recommended", "baselines", "candidates"}
    assert (advice["source"]["traffic"], advice["source"]["model"]) == ("uploaded trace", "simulated world")
    assert advice["objective"] == {"ttft_p95_seconds": 2.0, "attainment": 0.95}
    assert advice["hours"] == pytest.approx(10 / 60, abs=0.02)
    assert set(advice["baselines"]) == {"keda_seed", "static_peak"}
    for candidate in [advice["recommended"], *advice["baselines"].values(), *advice["candidates"]]:
        assert set(candidate) == CANDIDATE_KEYS
    assert len(advice["candidates"]) >= 40
    seed = advice["baselines"]["keda_seed"]["policy"]
    assert (
        seed["metric"],
        seed["target"],
        seed["polling_interval_seconds"],
        seed["cooldown_seconds"],
        seed["min_replicas"],
        seed["max_replicas"],
    ) == ("queue_depth_avg", 8.0, 30, 180, 1, 8)


def test_it_recommends_the_cheapest_candidate_that_meets_the_objective(advice):
    recommended = advice["recommended"]
    assert recommended["attainment"] >= 0.95
    meeting = [c for c in advice["candidates"] if c["attainment"] >= 0.95]
    assert min(c["gpu_hours"] for c in meeting) == recommended["gpu_hours"]
    assert recommended["gpu_hours"] <= advice["baselines"]["static_peak"]["gpu_hours"]


def test_it_sizes_static_peak_as_the_fewest_static_replicas_that_meet_the_objective(advice):
    peak = advice["baselines"]["static_peak"]
    assert peak["policy"]["kind"] == "static" and peak["attainment"] >= 0.95
    fewer = [
        c
        for c in advice["candidates"]
        if c["policy"]["kind"] == "static" and c["policy"]["replicas"] == peak["policy"]["replicas"] - 1
    ]
    assert fewer and fewer[0]["attainment"] < 0.95


def test_it_shows_cpu_scaling_never_scaling_a_gpu_server(advice):
    cpu = [
        c
        for c in advice["candidates"]
        if c["policy"].get("metric") == "cpu_utilization" and not c["policy"]["prescale"]
    ]
    assert cpu and all(c["attainment"] < 0.95 for c in cpu)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,12\n", "line 2: expected 3 fields, found 2"),
        ("when,what\n", "line 1: the header must be TIMESTAMP,ContextTokens,GeneratedTokens"),
    ],
)
def test_it_refuses_a_malformed_trace_with_one_line_naming_the_line(llama, tmp_path, lines, message):  # noqa: F811
    trace = tmp_path / "bad.csv"
    trace.write_text(lines)
    with pytest.raises(CommandError) as refused:
        advise(str(llama.id), "--trace", str(trace))
    assert "\n" not in str(refused.value) and message in str(refused.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attainment", "1.5"], "attainment is a fraction above 0 and at most 1"),
        (["--slo", "0"], "the TTFT objective must be above 0"),
        (["--spike", "0"], "the spike multiplier must be above 0"),
        (["--hours", "200"], "hours must be above 0 and at most 168"),
        (["--policy", "none min=2"], "leave out --policy"),
    ],
)
def test_it_refuses_a_bad_objective_or_spike(llama, args, message):  # noqa: F811
    with pytest.raises(CommandError, match=message):
        advise(str(llama.id), "--trace", str(SAMPLE), *args)


def test_it_refuses_a_trace_option_without_advise(llama):  # noqa: F811
    with pytest.raises(CommandError, match="--trace goes with --advise"):
        call_command(
            "whatif",
            str(llama.id),
            "--trace",
            str(SAMPLE),
            "--policy",
            "none min=1",
            stdout=StringIO(),
            stderr=StringIO(),
        )


def test_it_refuses_a_kubernetes_cluster_without_prometheus_clearly(db):
    """A Kubernetes deployment is modelled from its history (tests/scaling/test_history.py): none without Prometheus."""
    deployment = ModelDeploymentFactory(
        cluster=ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, prometheus_url="")
    )
    with pytest.raises(ApplicationError, match="prod has no Prometheus to read the deployment's history from"):
        advice_run(deployment=deployment, trace_path=SAMPLE)


def test_it_reads_prescale_windows_from_the_traffic_without_the_spike(llama, monkeypatch):  # noqa: F811
    from scaling import advice as service
    from simulator.traces import Spike

    seen = {}
    real = service.advise

    def spy(model, load, objective, **kwargs):
        seen["load"], seen["profile"] = load, kwargs["profile"]
        return real(model, load, objective, **kwargs)

    monkeypatch.setattr(service, "advise", spy)
    advice_run(deployment=llama, trace_path=SAMPLE, spike=Spike(10, 120, 60, 120), attainment=0.95)
    warmup = seen["load"].seconds - 600
    assert seen["load"].arrivals[warmup + 250] > 5 * seen["profile"].arrivals[warmup + 250] > 0
    assert seen["load"].arrivals[warmup + 30] == seen["profile"].arrivals[warmup + 30]


def _pod_events(deployment, pod: str, start, *, pull: int, load: int, uid: str) -> None:
    from datetime import timedelta

    from fleet.models import ScalingEvent

    for i, (kind, seconds) in enumerate(
        [
            ("pod_created", 0),
            ("pod_scheduled", 30),
            ("image_pulled", 30 + pull),
            ("container_started", 30 + pull),
            ("pod_ready", 30 + pull + load),
        ]
    ):
        ScalingEvent.objects.create(
            cluster=deployment.cluster,
            uid=f"{uid}-{i}",
            at=start + timedelta(seconds=seconds),
            kind=kind,
            namespace=deployment.namespace,
            object_kind="Pod",
            object_name=pod,
            source="pod",
            deployment=deployment,
        )


def test_the_advisor_takes_measured_cold_starts_over_the_worlds_settings_and_says_so(llama):  # noqa: F811
    from datetime import timedelta

    from django.utils import timezone

    from scaling.advice import deployment_model

    now = timezone.now()
    model, _ = deployment_model(llama, now)
    assert model.pod_start_seconds == 225  # the demo world's image pull + weight load
    assert "cold start: pod start 225 s and node start 840 s, the simulated world's settings" in model.notes

    for n in range(4):  # pulls of 40 s and loads of 300 s; the 30 s waits for a node are left out
        _pod_events(llama, f"llama-3-8b-abc-{n}", now - timedelta(hours=2 + n), pull=40, load=300, uid=f"p{n}")
    model, _ = deployment_model(llama, now)

    assert model.pod_start_seconds == 340 and model.node_start_seconds == 840
    assert model.longest_cold_start_seconds == 1180
    [note] = [n for n in model.notes if n.startswith("cold start:")]
    assert note == (
        "cold start: pod start 340 s measured (image pull p95 40 s + weight load p95 300 s, 4 pods in "
        "7 days), node start 840 s (the simulated world's setting: none measured)"
    )


def test_the_advice_page_shows_where_the_cold_start_came_from(llama):  # noqa: F811
    from datetime import timedelta

    from django.utils import timezone

    from tests.advice.runs import advice_page

    _pod_events(llama, "llama-3-8b-abc-0", timezone.now() - timedelta(hours=1), pull=40, load=300, uid="p")
    page = advice_page(llama, hours=1, attainment=0.95)
    assert "pod start 340 s measured (image pull p95 40 s + weight load p95 300 s, 1 pod in 7 days)" in page
