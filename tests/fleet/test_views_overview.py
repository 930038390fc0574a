from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fleet.backends.base import DeploymentMetrics
from tests.factories import (
    AutoscalerFactory,
    ClusterFactory,
    GpuFactory,
    GpuNodeFactory,
    ModelDeploymentFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db
URL = reverse("fleet:overview")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def htmx_get(client, url=URL):
    return client.get(url, headers={"HX-Request": "true", "HX-Target": "deployments-live"})


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_layout_with_user_role_logout_and_local_scripts(viewer_client):
    html = viewer_client.get(URL).content.decode()

    assert "vera" in html and "viewer" in html
    assert f'action="{reverse("logout")}"' in html and 'name="csrfmiddlewaretoken"' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "https://" not in html  # no CDN, no external asset
    assert f'href="{reverse("fleet:nodes")}"' in html


def test_it_links_every_page_in_the_main_navigation(viewer_client):
    html = viewer_client.get(URL).content.decode()

    for name, label in [
        ("scaling:audit", "Scaling actions"),
        ("scaling:rules", "Pre-scale rules"),
        ("scaling:quotas", "Quotas"),
        ("alerts:alerts", "Alerts"),
        ("costing:costs", "Costs"),
        ("mig:plans", "MIG plans"),
        ("mig:doctor", "Doctor"),
    ]:
        assert f'<a href="{reverse(name)}" >{label}</a>' in html, name


def test_it_shows_tiles_and_a_row_per_deployment(viewer_client, fake_metrics):
    cluster = ClusterFactory(name="prod")
    llama = ModelDeploymentFactory(
        cluster=cluster,
        name="llama-70b",
        model="meta-llama/Llama-3.1-70B",
        replicas_desired=4,
        replicas_ready=3,
        gpu_per_replica=4,
        ttft_slo_seconds=2.0,
    )
    AutoscalerFactory(deployment=llama, min_replicas=2, max_replicas=8)
    mistral = ModelDeploymentFactory(cluster=cluster, name="mistral", replicas_desired=1, replicas_ready=1)
    node = GpuNodeFactory(cluster=cluster)
    pod = PodFactory(deployment=llama, node=node)
    for i in range(4):
        GpuFactory(node=node, index=i, pod=pod)
    for i in range(4, 8):
        GpuFactory(node=node, index=i)
    fake_metrics.metrics = {
        ("llm", "llama-70b"): DeploymentMetrics(
            queue_depth=12, ttft_p95_seconds=3.5, kv_cache_usage=0.81, gpu_utilization=0.93
        ),
        ("llm", "mistral"): DeploymentMetrics(queue_depth=0, ttft_p95_seconds=0.4),
    }

    response = viewer_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="overview-tiles"' in html
    assert "4 / 5" in html  # replicas ready / desired, summed
    assert "12 req" in html  # total queue
    assert "3.50 s" in html and "llm/llama-70b" in html  # worst TTFT, and which deployment
    assert "4 / 8 <small>GPUs</small>" in html
    assert f'href="{reverse("fleet:deployment", args=[llama.id])}"' in html
    assert f'href="{reverse("fleet:deployment", args=[mistral.id])}"' in html
    assert "KEDA" in html and "2–8" in html
    assert "81 %" in html and "93 %" in html
    assert 'class="num slo-breach"' in html  # 3.5 s over a 2 s SLO
    assert 'class="num slo-ok"' in html


def test_it_polls_the_fragment_only_while_the_tab_is_visible(viewer_client):
    html = viewer_client.get(URL + "?cluster=prod").content.decode()

    assert 'hx-get="/?cluster=prod"' in html
    assert (
        "every 10s [document.visibilityState === &#x27;visible&#x27;]" in html
        or "every 10s [document.visibilityState === 'visible']" in html
    )


def test_it_answers_htmx_with_the_fragment_and_out_of_band_counters(viewer_client, fake_metrics):
    ModelDeploymentFactory(name="llama-8b")

    response = htmx_get(viewer_client)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "topbar" not in html
    assert 'id="deployments-table"' in html and "llm/llama-8b" in html
    assert 'id="overview-tiles" class="tiles" aria-label="Fleet totals" hx-swap-oob="true"' in html
    assert 'id="cluster-freshness"' in html and html.count('hx-swap-oob="true"') == 2


def test_it_says_how_fresh_each_cluster_is_and_flags_stale_ones(viewer_client):
    with time_machine.travel(NOW, tick=False):
        ClusterFactory(
            name="fresh", last_sync_at=NOW - timedelta(seconds=12), last_sync_ok_at=NOW - timedelta(seconds=12)
        )
        ClusterFactory(
            name="behind",
            last_sync_at=NOW - timedelta(seconds=5),
            last_sync_ok_at=NOW - timedelta(minutes=30),
            last_sync_status="failed",
            last_sync_error="Unauthorized: token expired",
        )

        html = viewer_client.get(URL).content.decode()

    assert "<strong>fresh</strong>\n      synced 12 s ago" in html
    assert "<strong>behind</strong>\n      synced 30 min ago" in html
    assert html.count(">stale</span>") == 1
    assert "last sync failed: Unauthorized: token expired" in html


def test_it_escapes_names_that_come_from_the_cluster(viewer_client, fake_metrics):
    ModelDeploymentFactory(name="<script>alert(1)</script>", model="<img src=x onerror=alert(2)>")

    html = viewer_client.get(URL).content.decode()

    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_still_answers_when_the_metrics_backend_fails(viewer_client, broken_metrics):
    ModelDeploymentFactory(name="llama-8b")
    ModelDeploymentFactory(name="mistral")

    response = viewer_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "metrics unavailable for 2 deployments: Prometheus at http://prom:9090 timed out after 3 s" in html
    assert "llm/llama-8b" in html


def test_it_says_why_metrics_are_missing_for_a_cluster_without_prometheus(viewer_client):
    ModelDeploymentFactory(cluster=ClusterFactory(prometheus_url=""))

    html = viewer_client.get(URL).content.decode()

    assert "metrics unavailable for 1 deployment: no Prometheus URL configured for this cluster" in html


def test_it_filters_deployments_with_the_shared_filterset(viewer_client, fake_metrics):
    ModelDeploymentFactory(cluster=ClusterFactory(name="prod"), name="in-prod")
    ModelDeploymentFactory(cluster=ClusterFactory(name="staging"), name="in-staging")

    html = viewer_client.get(URL + "?cluster=prod").content.decode()

    assert "llm/in-prod" in html and "llm/in-staging" not in html


def test_it_shows_a_bad_filter_as_an_error_not_a_500(viewer_client):
    ModelDeploymentFactory(name="llama-8b")

    response = viewer_client.get(URL + "?include_gone=maybe")

    html = response.content.decode()
    assert response.status_code == 400  # the page, naming the parameter, as the API would
    assert "include_gone: &#x27;maybe&#x27; is not true or false." in html
    assert "llm/llama-8b" not in html


def test_it_hides_deployments_gone_from_the_cluster(viewer_client):
    ModelDeploymentFactory(name="old-model", gone_at=NOW)

    assert "llm/old-model" not in viewer_client.get(URL).content.decode()


def _world(size: int):
    cluster = ClusterFactory()
    node = GpuNodeFactory(cluster=cluster)
    for i in range(size):
        deployment = ModelDeploymentFactory(cluster=cluster, name=f"model-{i}")
        AutoscalerFactory(deployment=deployment)
        pod = PodFactory(deployment=deployment, node=node)
        GpuFactory(node=node, index=i, pod=pod)


def count_queries(client, url, **kwargs) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, **kwargs).status_code == 200
    return len(ctx.captured_queries)


def test_it_runs_as_many_queries_for_50_deployments_as_for_5(
    viewer_client, fake_metrics, django_assert_max_num_queries
):
    _world(5)
    few = count_queries(viewer_client, URL)
    _world(50)

    with django_assert_max_num_queries(few):
        assert viewer_client.get(URL).status_code == 200
    with django_assert_max_num_queries(few):
        assert htmx_get(viewer_client).status_code == 200


def test_it_totals_every_deployment_but_shows_the_table_100_rows_at_a_time(viewer_client, fake_metrics):
    cluster = ClusterFactory(name="big")
    ModelDeploymentFactory.create_batch(101, cluster=cluster, replicas_desired=1)

    first = viewer_client.get(URL).content.decode()
    second = viewer_client.get(URL, {"cluster": "big", "page": 2}).content.decode()

    assert '<div class="tile-value">101</div>' in first and "101 / 101" in first
    assert "101 deployments, 1–100 shown" in first and 'href="?page=2"' in first
    assert "101 deployments, 101–101 shown" in second
    assert second.count('<a href="/deployments/') == 1
    assert 'hx-get="/?cluster=big&amp;page=2"' in second  # the poll keeps the page


def test_it_never_prints_minus_zero():
    from core.templatetags.scaledeck import qty

    assert qty(-0.0, "req") == "0 req"
    assert qty(-0.04, "req") == "0.0 req"
    assert qty(-2, "req") == "-2 req"


def _llama_and_mistral():
    """llama holds 4 of the node's 8 GPUs, mistral 2; 2 are free."""
    cluster = ClusterFactory(name="prod")
    node = GpuNodeFactory(cluster=cluster)
    llama = ModelDeploymentFactory(cluster=cluster, name="Llama-3-8B")
    mistral = ModelDeploymentFactory(cluster=cluster, name="mistral-7b")
    for deployment, indexes in ((llama, range(4)), (mistral, range(4, 6))):
        pod = PodFactory(deployment=deployment, node=node)
        for i in indexes:
            GpuFactory(node=node, index=i, pod=pod)
    for i in range(6, 8):
        GpuFactory(node=node, index=i)
    return llama, mistral


def test_it_finds_a_part_of_the_name_in_any_case(viewer_client, fake_metrics):
    llama, mistral = _llama_and_mistral()

    html = viewer_client.get(URL, {"name": "llama"}).content.decode()

    assert reverse("fleet:deployment", args=[llama.id]) in html
    assert reverse("fleet:deployment", args=[mistral.id]) not in html


def test_the_api_keeps_its_exact_name_match(viewer_client, fake_metrics):
    _llama_and_mistral()

    assert viewer_client.get("/api/v1/deployments/", {"name": "llama"}).json()["count"] == 0
    assert viewer_client.get("/api/v1/deployments/", {"name": "Llama-3-8B"}).json()["count"] == 1


def test_the_gpu_tile_counts_only_the_gpus_of_the_deployments_shown(viewer_client, fake_metrics):
    _llama_and_mistral()

    everything = viewer_client.get(URL).content.decode()
    filtered = viewer_client.get(URL, {"name": "mistral"}).content.decode()

    assert "6 / 8 <small>GPUs</small>" in everything
    assert "2 / 8 <small>GPUs</small>" in filtered and "GPUs these deployments hold / total" in filtered
