import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fleet.backends.base import GpuUtilization
from fleet.views.nodes import deployment_colour
from tests.factories import (
    ClusterFactory,
    GpuFactory,
    GpuNodeFactory,
    MigDeviceFactory,
    ModelDeploymentFactory,
    NodePoolFactory,
    PodFactory,
)

pytestmark = pytest.mark.django_db
URL = reverse("fleet:nodes")
UTIL_URL = reverse("fleet:nodes-gpu-utilization")


def price(instance_type="p4de.24xlarge", usd="40.966"):
    from costing.models import InstancePrice

    return InstancePrice.objects.create(
        instance_type=instance_type,
        region="us-east-1",
        capacity_type="on-demand",
        usd_per_hour=usd,
        gpu_count=8,
        source="test",
        effective_from=date(2025, 1, 1),
    )


def mig_node(cluster, name="gpu-mig", **kw):
    """An A100 in all-3g.40gb-like layout: GPU 0 holds two 3g slices (6 of 7 compute slices)."""
    node = GpuNodeFactory(cluster=cluster, name=name, mig=True, **kw)
    gpu = GpuFactory(node=node, index=0, mig_enabled=True)
    return node, gpu


def test_it_groups_nodes_by_cluster_and_pool(viewer_client):
    prod, staging = ClusterFactory(name="prod"), ClusterFactory(name="staging")
    GpuNodeFactory(cluster=prod, name="a-1", node_pool=NodePoolFactory(cluster=prod, name="a100"))
    GpuNodeFactory(
        cluster=prod,
        name="h-1",
        node_pool=NodePoolFactory(cluster=prod, name="h100"),
        capacity_type="spot",
        instance_type="p5.48xlarge",
    )
    GpuNodeFactory(
        cluster=staging,
        name="s-1",
        node_pool=NodePoolFactory(cluster=staging, name="l4"),
        ready=False,
        unschedulable=True,
    )

    html = viewer_client.get(URL).content.decode()

    positions = [
        html.index(text)
        for text in ["<h2>prod", "pool a100", "a-1", "pool h100", "h-1", "<h2>staging", "pool l4", "s-1"]
    ]
    assert positions == sorted(positions)
    assert '<span class="badge spot">spot</span>' in html
    assert ">not ready</span>" in html and ">cordoned</span>" in html


def test_it_flags_an_unpriced_instance_type_and_never_shows_zero(viewer_client):
    price("p4de.24xlarge", "40.966")
    GpuNodeFactory(name="priced", instance_type="p4de.24xlarge")
    GpuNodeFactory(name="unpriced", instance_type="x9.mystery")

    html = viewer_client.get(URL).content.decode()

    assert "$40.97/h" in html
    assert 'title="no price for instance type x9.mystery in the catalog">no price</span>' in html
    assert "$0.00" not in html


def test_it_draws_whole_gpus_and_mig_slices_coloured_by_their_holder(viewer_client):
    cluster = ClusterFactory()
    llama = ModelDeploymentFactory(cluster=cluster, name="llama")
    mistral = ModelDeploymentFactory(cluster=cluster, name="mistral", gpu_resource="nvidia.com/mig-3g.40gb")
    whole = GpuNodeFactory(cluster=cluster, name="gpu-whole")
    GpuFactory(node=whole, index=0, pod=PodFactory(deployment=llama, node=whole))
    GpuFactory(node=whole, index=1)
    node, gpu = mig_node(cluster)
    MigDeviceFactory(gpu=gpu, slot=0, pod=PodFactory(deployment=mistral, node=node))
    MigDeviceFactory(gpu=gpu, slot=1)

    html = viewer_client.get(URL).content.decode()

    assert f'style="width: 100.000%; --c: {deployment_colour(llama.id)};"' in html
    assert html.count('class="slice free" style="width: 100.000%;"') == 1  # GPU 1 of gpu-whole
    assert f'style="width: 42.857%; --c: {deployment_colour(mistral.id)};"' in html  # 3 of 7 compute slices
    assert 'class="slice free" style="width: 42.857%;"' in html
    assert 'class="slice unallocated" style="width: 14.286%;"' in html and "1 unused slice" in html
    assert '<span class="slice-label">3g</span>' in html and 'title="3g.40gb: llm/mistral (pod ' in html
    legend = html.split('class="legend"')[1].split("</ul>")[0]
    assert "llm/llama" in legend and "llm/mistral" in legend
    assert "all-3g.40gb" in html and "16 × 3g.40gb" in html


def test_it_filters_with_the_same_filterset_as_the_api(viewer_client):
    GpuNodeFactory(name="cheap", capacity_type="spot")
    GpuNodeFactory(name="steady", capacity_type="on-demand")

    html = viewer_client.get(URL, {"capacity_type": "spot"}).content.decode()

    assert ">cheap<" in html and ">steady<" not in html


def test_it_shows_a_malformed_filter_as_an_error(viewer_client):
    GpuNodeFactory(name="gpu-1")

    response = viewer_client.get(URL, {"capacity_type": "cheap", "ready": "maybe"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "capacity_type: Select a valid choice. cheap is not one of the available choices." in html
    assert "ready: &#x27;maybe&#x27; is not true or false." in html
    assert ">gpu-1<" not in html


def test_it_pages_through_many_nodes_50_at_a_time(viewer_client):
    cluster = ClusterFactory(name="big")
    for i in range(51):
        GpuNodeFactory(cluster=cluster, name=f"node-{i:03d}")

    first = viewer_client.get(URL, {"cluster": "big"}).content.decode()
    second = viewer_client.get(URL, {"cluster": "big", "page": 2}).content.decode()
    beyond = viewer_client.get(URL, {"cluster": "big", "page": "zzz"})

    assert "node-049" in first and "node-050" not in first
    assert "page 1 of 2 · 51 nodes" in first and 'href="?cluster=big&amp;page=2"' in first
    assert "node-050" in second and "node-000" not in second
    assert beyond.status_code == 200


def test_it_escapes_node_names_labels_and_pod_names(viewer_client):
    node = GpuNodeFactory(
        name="<script>alert(1)</script>", instance_type="<b>x</b>", gpu_product="<img src=x onerror=alert(2)>"
    )
    deployment = ModelDeploymentFactory(cluster=node.cluster, name="<svg onload=alert(3)>")
    GpuFactory(node=node, index=0, pod=PodFactory(deployment=deployment, node=node))

    html = viewer_client.get(URL).content.decode()

    for raw in ["<script>alert(1)", "<b>x</b>", "<img src=x", "<svg onload"]:
        assert raw not in html, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_loads_gpu_utilization_lazily_for_the_same_page(viewer_client):
    html = viewer_client.get(URL, {"cluster": "prod", "page": 2}).content.decode()

    assert f'hx-get="{UTIL_URL}?cluster=prod&amp;page=2"' in html and 'hx-trigger="load"' in html


def test_it_fills_in_per_gpu_and_per_slice_utilization_out_of_band(viewer_client, fake_metrics):
    cluster = ClusterFactory()
    whole = GpuNodeFactory(cluster=cluster, name="gpu-whole")
    gpu0 = GpuFactory(node=whole, index=0)
    node, mig_gpu = mig_node(cluster)
    slice0 = MigDeviceFactory(gpu=mig_gpu, slot=0)
    slice1 = MigDeviceFactory(gpu=mig_gpu, slot=1)
    fake_metrics.gpus = [
        GpuUtilization("gpu-whole", 0, None, None, 0.734, memory_used_mib=40000, power_watts=310, temperature_c=61),
        GpuUtilization("gpu-mig", 0, "3g.40gb", 1, 0.25),
        GpuUtilization("gpu-mig", 0, "3g.40gb", 2, 0.5),
    ]

    response = viewer_client.get(UTIL_URL, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(rf'id="gpu-util-{gpu0.id}" hx-swap-oob="true" title="[^"]*310 W[^"]*">73%</span>', html)
    assert re.search(rf'id="mig-util-{slice0.id}" hx-swap-oob="true" title="approximate[^"]*">25%</span>', html)
    assert re.search(rf'id="mig-util-{slice1.id}" hx-swap-oob="true" title="approximate[^"]*">50%</span>', html)
    assert "GPU utilization as of" in html


def slice_cells(html: str) -> dict[int, tuple[str, str]]:
    """MigDevice id -> (shown value, title) of every slice cell in the fragment."""
    return {
        int(m["id"]): (m["value"], m["title"] or "")
        for m in re.finditer(
            r'id="mig-util-(?P<id>\d+)" hx-swap-oob="true" (?:title="(?P<title>[^"]*)")?>(?P<value>[^<]*)</span>', html
        )
    }


def test_it_matches_slice_readings_by_gi_id_order_not_by_the_order_they_arrive(viewer_client, fake_metrics):
    """7 x 1g.10gb on an A100: GI ids 7..13 (not slots 0..6), arriving shuffled."""
    node, gpu = mig_node(ClusterFactory())
    slices = [MigDeviceFactory(gpu=gpu, slot=slot, profile="1g.10gb", compute_slices=1) for slot in range(7)]
    order = [11, 7, 13, 9, 8, 12, 10]
    fake_metrics.gpus = [GpuUtilization("gpu-mig", 0, "1g.10gb", gi, (gi - 7) / 10) for gi in order]

    cells = slice_cells(viewer_client.get(UTIL_URL).content.decode())

    assert {d.id: cells[d.id][0] for d in slices} == {d.id: f"{d.slot * 10}%" for d in slices}
    assert all(title.startswith("approximate: matched to this slice by position") for _, title in cells.values())


def test_it_matches_each_profile_on_its_own_and_never_reuses_a_reading(viewer_client, fake_metrics):
    """4g+2g+1g: GI ids 1 (4g), 5 (2g), 13 (1g) - one slice per profile, so no guess."""
    node, gpu = mig_node(ClusterFactory())
    four = MigDeviceFactory(gpu=gpu, slot=0, profile="4g.40gb", compute_slices=4)
    two = MigDeviceFactory(gpu=gpu, slot=1, profile="2g.20gb", compute_slices=2)
    one = MigDeviceFactory(gpu=gpu, slot=2, profile="1g.10gb", compute_slices=1)
    extra = MigDeviceFactory(
        gpu=GpuFactory(node=node, index=1, mig_enabled=True), slot=0, profile="1g.10gb", compute_slices=1
    )
    fake_metrics.gpus = [
        GpuUtilization("gpu-mig", 0, "1g.10gb", 13, 0.1),
        GpuUtilization("gpu-mig", 0, "2g.20gb", 5, 0.2),
        GpuUtilization("gpu-mig", 0, "4g.40gb", 1, 0.4),
    ]

    cells = slice_cells(viewer_client.get(UTIL_URL).content.decode())

    assert cells == {four.id: ("40%", ""), two.id: ("20%", ""), one.id: ("10%", "")}
    assert extra.id not in cells  # GPU 1's slice gets nothing from GPU 0's readings


def test_it_ignores_a_reading_of_a_profile_the_gpu_has_no_slice_of(viewer_client, fake_metrics):
    node, gpu = mig_node(ClusterFactory())
    first = MigDeviceFactory(gpu=gpu, slot=0)
    second = MigDeviceFactory(gpu=gpu, slot=1)
    fake_metrics.gpus = [
        GpuUtilization("gpu-mig", 0, "7g.80gb", 0, 0.99),
        GpuUtilization("gpu-mig", 0, "1g.10gb", 9, 0.98),
        GpuUtilization("gpu-mig", 0, "3g.40gb", 2, 0.5),
    ]

    cells = slice_cells(viewer_client.get(UTIL_URL).content.decode())

    assert set(cells) == {first.id}  # one 3g reading: one slice; the 7g and 1g readings go nowhere
    assert second.id not in cells
    assert cells[first.id][0] == "50%"
    assert "99%" not in str(cells) and "98%" not in str(cells)


def test_a_reading_that_names_its_pod_lands_on_that_pods_slice_before_positional_ones(viewer_client, fake_metrics):
    cluster = ClusterFactory()
    node, gpu = mig_node(cluster)
    deployment = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="chat")
    pod = PodFactory(deployment=deployment, node=node, name="chat-abc")
    free = MigDeviceFactory(gpu=gpu, slot=0)
    held = MigDeviceFactory(gpu=gpu, slot=1, pod=pod)
    fake_metrics.gpus = [  # positionally GI 1 -> slot 0, GI 2 -> slot 1: both wrong
        GpuUtilization("gpu-mig", 0, "3g.40gb", 1, 0.87, namespace="llm", pod="chat-abc"),
        GpuUtilization("gpu-mig", 0, "3g.40gb", 2, 0.0),
    ]

    response = viewer_client.get(UTIL_URL)
    cells = slice_cells(response.content.decode())

    assert cells[held.id] == ("87%", "")  # exact: no "approximate" title
    assert cells[free.id][0] == "0%" and cells[free.id][1].startswith("approximate")
    # The fragment only fills the value in: the free slice is still drawn grey.
    page = viewer_client.get(URL).content.decode()
    assert re.search(
        r'<div class="slice free"[^>]*>\s*<span class="slice-label">3g</span>'
        rf'<span class="util" id="mig-util-{free.id}">',
        page,
    )


def test_a_reading_naming_another_namespace_or_an_unknown_pod_falls_back_to_position(viewer_client, fake_metrics):
    cluster = ClusterFactory()
    node, gpu = mig_node(cluster)
    pod = PodFactory(deployment=ModelDeploymentFactory(cluster=cluster, namespace="llm"), node=node, name="p")
    held = MigDeviceFactory(gpu=gpu, slot=0, pod=pod)
    other = MigDeviceFactory(gpu=gpu, slot=1)
    fake_metrics.gpus = [
        GpuUtilization("gpu-mig", 0, "3g.40gb", 2, 0.2, namespace="batch", pod="p"),
        GpuUtilization("gpu-mig", 0, "3g.40gb", 1, 0.1, namespace="llm", pod="gone"),
    ]

    cells = slice_cells(viewer_client.get(UTIL_URL).content.decode())

    assert cells[held.id][0] == "10%" and cells[other.id][0] == "20%"
    assert all(title.startswith("approximate") for _, title in cells.values())


def test_it_says_gpu_utilization_is_unavailable_when_the_backend_fails(viewer_client, broken_metrics):
    GpuFactory(node=GpuNodeFactory(cluster=ClusterFactory(name="prod")), index=0)

    response = viewer_client.get(UTIL_URL)

    assert response.status_code == 200
    assert (
        "GPU utilization of prod: metrics unavailable: Prometheus at http://prom:9090 timed out after 3 s"
        in response.content.decode()
    )


def test_it_runs_as_many_queries_for_50_nodes_as_for_5(viewer_client, fake_metrics):
    def nodes(cluster_name: str, count: int):
        cluster = ClusterFactory(name=cluster_name)
        deployment = ModelDeploymentFactory(cluster=cluster)
        for i in range(count):
            node = GpuNodeFactory(
                cluster=cluster,
                name=f"{cluster_name}-{i}",
                node_pool=NodePoolFactory(cluster=cluster, name=f"pool-{i % 3}"),
            )
            GpuFactory(node=node, index=0, pod=PodFactory(deployment=deployment, node=node))
            GpuFactory(node=node, index=1)
            _, gpu = mig_node(cluster, name=f"{cluster_name}-mig-{i}")
            MigDeviceFactory(gpu=gpu, slot=0, pod=PodFactory(deployment=deployment, node=gpu.node))

    nodes("small", 5)
    nodes("large", 50)
    counts = {}
    for name in ("small", "large"):
        for url in (URL, UTIL_URL):
            with CaptureQueriesContext(connection) as ctx:
                assert viewer_client.get(url, {"cluster": name}).status_code == 200
            counts[(name, url)] = len(ctx.captured_queries)

    assert counts[("small", URL)] == counts[("large", URL)]
    assert counts[("small", UTIL_URL)] == counts[("large", UTIL_URL)]
