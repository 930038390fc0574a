"""What-if: parsing candidate policies, the service, `manage.py whatif`, and the page."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from core.errors import ApplicationError
from fleet.models import Cluster
from fleet.world_store import DbWorldStore
from scaling.models import WhatIfRun
from scaling.whatif import check_run, parse_policy, whatif_compare
from simulator import Policy, World, demo_world
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "keda min=2 max=12 target=5",
            Policy(label="keda min=2 max=12 target=5", kind="keda", min_replicas=2, max_replicas=12, target_value=5.0),
        ),
        ("  KEDA   min=0 max=4 ", Policy(label="keda min=0 max=4", kind="keda", min_replicas=0, max_replicas=4)),
        (
            "hpa min=2 max=8 metric=gpu_utilization target=0.7",
            Policy(
                label="hpa min=2 max=8 metric=gpu_utilization target=0.7",
                kind="hpa",
                min_replicas=2,
                max_replicas=8,
                metric="gpu_utilization",
                target_value=0.7,
            ),
        ),
        (
            "hpa max=3",
            Policy(
                label="hpa max=3",
                kind="hpa",
                min_replicas=1,
                max_replicas=3,
                metric="gpu_utilization",
                target_value=0.7,
            ),
        ),
        (
            "keda min=1 max=6 cooldown=60 polling=15",
            Policy(
                label="keda min=1 max=6 cooldown=60 polling=15",
                kind="keda",
                min_replicas=1,
                max_replicas=6,
                cooldown_s=60,
                polling_interval_s=15,
            ),
        ),
        ("none min=6", Policy(label="none min=6", kind="none", min_replicas=6, max_replicas=6)),
    ],
)
def test_it_parses_policies(text, expected):
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty policy"),
        ("vpa min=2", "unknown kind 'vpa'"),
        ("keda min=2 floor=3", "unknown key 'floor'"),
        ("keda min=two", "min must be a whole number, not 'two'"),
        ("keda min=2.5", "min must be a whole number"),
        ("keda target=lots", "target must be a number, not 'lots'"),
        ("keda target=nan", "target must be a finite number"),
        ("keda min=8 max=4", "min 8 is above max 4"),
        ("keda min", "'min' is not key=value"),
        ("keda min=2 min=3", "min given twice"),
        ("hpa min=0 max=4", "min must be at least 1 for hpa"),
        ("hpa metric=gpu_utilization target=70", "target for gpu_utilization is a fraction of 1"),
        ("hpa metric=memory", "unknown metric 'memory'"),
        ("keda target=0", "target must be above 0"),
        ("none max=4", "kind none takes only min"),
        ("none", "kind none needs min"),
    ],
)
def test_it_refuses_bad_policies_with_a_clear_message(text, message):
    with pytest.raises(ApplicationError) as exc:
        parse_policy(text)
    assert message in exc.value.message and exc.value.field == "policy"


@pytest.mark.parametrize(
    ("hours", "spike", "candidates", "message"),
    [
        (0, None, 1, "hours must be above 0 and at most 24, not 0"),
        (-1, None, 1, "hours must be above 0"),
        (24.5, None, 1, "not 24.5"),
        (1, 3, 1, "run more than 1 hour"),
        (2, 0, 1, "spike is a multiplier above 0"),
        (2, None, 5, "give 1 to 4 policies, not 5"),
        (2, None, 0, "give 1 to 4 policies, not 0"),
    ],
)
def test_it_refuses_runs_out_of_bounds(hours, spike, candidates, message):
    with pytest.raises(ApplicationError) as exc:
        check_run(hours=hours, spike=spike, candidates=candidates)
    assert message in exc.value.message


def test_it_accepts_a_full_day():
    check_run(hours=24, spike=3, candidates=4)


# --------------------------------------------------------------------------- against a simulated world


@functools.cache
def _demo_state() -> dict:
    return demo_world(seed=3, now=NOON, warmup_hours=1).to_dict()


@pytest.fixture
def llama(db):
    cluster = ClusterFactory(
        name="demo", backend=Cluster.Backend.SIMULATED, kubeconfig_path="", namespaces=["llm-prod", "team-search"]
    )
    DbWorldStore(cluster).replace(World.from_dict(_demo_state()), seed=3)
    return ModelDeploymentFactory(cluster=cluster, namespace="llm-prod", name="llama-3-8b", ttft_slo_seconds=2.0)


def test_it_gives_a_bigger_floor_no_more_slo_violations_under_a_spike(llama):
    small, big = parse_policy("keda min=1 max=12 target=5"), parse_policy("keda min=6 max=12 target=5")

    summaries = whatif_compare(deployment=llama, candidates=[small, big], hours=2, spike=3).summaries

    assert [s.policy for s in summaries] == [small, big]
    assert summaries[1].slo_violation_minutes <= summaries[0].slo_violation_minutes
    assert summaries[0].slo_violation_minutes > 0  # the spike does hurt the small floor
    assert summaries[1].gpu_hours > summaries[0].gpu_hours
    assert all(s.slo_ttft_p95_seconds == 2.0 for s in summaries)


def test_it_leaves_the_stored_world_alone(llama):
    before = DbWorldStore(llama.cluster).load().to_dict()

    whatif_compare(deployment=llama, candidates=[parse_policy("none min=3")], hours=1, spike=None)

    assert DbWorldStore(llama.cluster).load().to_dict() == before


def test_it_refuses_a_kubernetes_cluster_without_prometheus_clearly(db):
    deployment = ModelDeploymentFactory(
        cluster=ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, prometheus_url="")
    )

    with pytest.raises(ApplicationError) as exc:
        whatif_compare(deployment=deployment, candidates=[parse_policy("none min=2")], hours=1, spike=None)

    assert exc.value.status == 409
    assert exc.value.message.startswith("prod has no Prometheus: what-if replays a Kubernetes deployment's")


def test_a_simulated_cluster_replays_a_day_at_most_and_measured_history_a_week(db):
    simulated = ModelDeploymentFactory(cluster=ClusterFactory(backend=Cluster.Backend.SIMULATED))
    real = ModelDeploymentFactory(
        cluster=ClusterFactory(backend=Cluster.Backend.KUBERNETES, prometheus_url="http://127.0.0.1:1")
    )
    with pytest.raises(ApplicationError) as exc:
        whatif_compare(deployment=simulated, candidates=[parse_policy("none min=2")], hours=25, spike=None)
    assert exc.value.message == "hours must be above 0 and at most 24, not 25"
    with pytest.raises(ApplicationError) as exc:
        whatif_compare(deployment=real, candidates=[parse_policy("none min=2")], hours=169, spike=None)
    assert exc.value.message == "hours must be above 0 and at most 168, not 169"


# --------------------------------------------------------------------------- manage.py whatif


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("whatif", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_one_row_per_candidate_with_progress(llama):
    out, err = run(str(llama.id), "--hours", "1", "--policy", "keda min=2 max=12 target=5", "--policy", "none min=6")

    lines = out.strip().splitlines()
    assert lines[0] == "demo llm-prod/llama-3-8b: 1 h (2025-06-04 12:01-13:00 UTC, simulated), SLO TTFT p95 2 s"
    assert "SLO-viol (min)" in lines[1] and "cost ($)" in lines[1] and "GPU-hours (GPU·h)" in lines[1]
    assert [line.split("  ")[0].strip() for line in lines[2:]] == ["keda min=2 max=12 target=5", "none min=6"]
    assert err.splitlines() == ["simulating 1/2: keda min=2 max=12 target=5", "simulating 2/2: none min=6"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "keda min=9 max=3"], "policy 'keda min=9 max=3': min 9 is above max 3"),
        (["--policy", "vpa min=1"], "unknown kind 'vpa'"),
        (["--policy", "none min=2", "--hours", "30"], "hours must be above 0 and at most 24, not 30"),
        ([], "give at least one --policy"),
    ],
)
def test_it_exits_non_zero_with_one_line_on_bad_input(llama, args, message):
    with pytest.raises(CommandError) as exc:
        run(str(llama.id), *args)
    assert "\n" not in str(exc.value) and message in str(exc.value)


def test_it_exits_non_zero_for_an_unknown_deployment(db):
    with pytest.raises(CommandError, match="^no deployment with id 999$"):
        run("999", "--policy", "none min=1")


# --------------------------------------------------------------------------- the page


def login(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(username=role, role=role))
    return client


def test_it_renders_the_form_with_the_current_autoscaler_as_a_starting_point(llama):
    response = login("viewer").get(reverse("scaling:whatif", args=[llama.id]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "What-if: llama-3-8b" in html and 'name="policies"' in html and "plotly-chart" not in html


def test_it_runs_for_a_viewer_and_shows_the_table_and_the_figure(llama):
    response = login("viewer").post(
        reverse("scaling:whatif", args=[llama.id]),
        {
            "policies": "keda min=1 max=12 target=5\nkeda min=6 max=12 target=5",
            "hours": "2",
            "spike": "3",
        },
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<td class="mono">keda min=') == 2
    assert 'data-figure="whatif-figure"' in html and 'id="whatif-figure"' in html
    figure = response.context["figure"]
    names = {trace["name"] for trace in figure["data"]}
    assert names == {"keda min=1 max=12 target=5", "keda min=6 max=12 target=5"}
    assert "SLO p95 2 s" in str(figure["layout"]["annotations"])


def test_it_shows_bad_input_inline(llama):
    response = login("viewer").post(
        reverse("scaling:whatif", args=[llama.id]),
        {
            "policies": "keda min=9 max=3",
            "hours": "2",
        },
    )

    assert response.status_code == 400
    assert "min 9 is above max 3" in response.content.decode()
    assert response.context["form"].errors["policies"]


def test_it_caps_the_page_at_four_candidates_and_24_hours(llama):
    response = login("viewer").post(
        reverse("scaling:whatif", args=[llama.id]),
        {
            "policies": "\n".join(f"none min={n}" for n in range(1, 6)),
            "hours": "48",
        },
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "at most 4 policies" in errors["policies"][0] and errors["hours"]


def test_it_refuses_a_kubernetes_deployment_without_prometheus_on_the_page_and_writes_nothing(db):
    deployment = ModelDeploymentFactory(
        cluster=ClusterFactory(name="prod", backend=Cluster.Backend.KUBERNETES, prometheus_url="")
    )

    response = login("viewer").post(
        reverse("scaling:whatif", args=[deployment.id]),
        {
            "policies": "none min=2",
            "hours": "1",
        },
    )

    assert response.status_code == 409
    assert "prod has no Prometheus: what-if replays a Kubernetes deployment" in response.content.decode()
    assert not WhatIfRun.objects.exists()


def test_a_kubernetes_deployment_page_takes_a_week_of_history_and_a_simulated_one_a_day(llama):
    real = ModelDeploymentFactory(
        cluster=ClusterFactory(backend=Cluster.Backend.KUBERNETES, prometheus_url="http://127.0.0.1:1")
    )
    body = {"policies": "none min=2", "hours": "100"}

    simulated = login("viewer").post(reverse("scaling:whatif", args=[llama.id]), body)
    assert simulated.status_code == 400 and simulated.context["form"].errors["hours"]
    page = login("viewer").get(reverse("scaling:whatif", args=[real.id])).content.decode()
    assert "measured traffic from Prometheus" in page and 'max="168"' in page


def test_it_is_linked_from_the_scale_controls_of_a_deployment_with_prometheus(db):
    real = ModelDeploymentFactory(
        cluster=ClusterFactory(backend=Cluster.Backend.KUBERNETES, prometheus_url="http://127.0.0.1:1")
    )
    blind = ModelDeploymentFactory(cluster=ClusterFactory(backend=Cluster.Backend.KUBERNETES, prometheus_url=""))
    for deployment, linked in ((real, True), (blind, False)):
        response = login("viewer").get(
            reverse("scaling:deployment-controls", args=[deployment.id]), HTTP_HX_REQUEST="true"
        )
        assert (reverse("scaling:whatif", args=[deployment.id]) in response.content.decode()) is linked


def test_it_is_linked_from_the_scale_controls_of_a_simulated_deployment(llama):
    response = login("viewer").get(reverse("scaling:deployment-controls", args=[llama.id]), HTTP_HX_REQUEST="true")

    assert "Try policies first:" in response.content.decode()
    assert reverse("scaling:whatif", args=[llama.id]) in response.content.decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("none min=1001", "min must be within 0-1000"),
        ("keda min=1 max=1001", "max must be within 1-1000"),
        ("hpa min=2 max=5000", "max must be within 1-1000"),
    ],
)
def test_it_refuses_candidates_above_1000_replicas(text, message):
    with pytest.raises(ApplicationError, match=message):
        parse_policy(text)


def test_it_accepts_a_candidate_of_exactly_1000_replicas():
    assert parse_policy("keda min=1 max=1000").max_replicas == 1000
