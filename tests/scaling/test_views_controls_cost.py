"""The scale panel says what the deployment costs now, and what the requested change would cost."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from tests.costing.factories import InstancePriceFactory
from tests.factories import GpuNodeFactory, PodFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def priced_keda_deployment(world):
    """llama: 2 replicas of 1 A100 each on a p4de.24xlarge ($27.44705/h for 8 GPUs), KEDA 2-8."""
    InstancePriceFactory()
    world.cluster.region = "us-east-1"
    world.cluster.save()
    dep = world.deployment(replicas=2, replicas_ready=2)
    world.keda(dep, min_replicas=2, max_replicas=8)
    node = GpuNodeFactory(cluster=world.cluster, name="a100-a")
    for i in range(2):
        PodFactory(deployment=dep, node=node, name=f"llama-{i}", gpu_requests={"nvidia.com/gpu": 1})
    return dep


def controls(client, dep, **kwargs):
    url = reverse("scaling:deployment-controls", args=[dep.id])
    if kwargs:
        return client.post(url, kwargs, **HTMX).content.decode()
    return client.get(url, **HTMX).content.decode()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_panel_shows_the_cost_now_per_hour_per_gpu_hour_and_per_replica(world, viewer):
    dep = priced_keda_deployment(world)

    html = controls(login(viewer), dep)

    assert "Cost now" in html
    assert "<strong>$6.86/h</strong> for 2 replicas ($3.43/h each)" in html  # 2 x 27.44705/8
    assert "2 GPUs at $3.43/GPU-hour" in html
    assert "cost per 1M tokens: not known yet" in html  # nothing accrued yet


def test_the_confirmation_shows_what_the_change_would_cost(world, operator):
    dep = priced_keda_deployment(world)

    html = controls(login(operator), dep, replicas=6, mode="floor", duration="", reason="launch")

    assert "more than doubles" in html
    # The dry run's $/hour effect: 2 -> 6 replicas of 27.44705/8 = $3.4309/h each, and over a day.
    assert "Cost $6.86/h → <strong>$20.59/h</strong>" in html
    assert "(+$13.73/h, +$329.52/day)" in html


def test_the_panel_prices_a_mig_slice_as_its_share_of_a_gpu(world, viewer):
    InstancePriceFactory()
    world.cluster.region = "us-east-1"
    world.cluster.save()
    dep = world.deployment("mistral", replicas=2, gpu_resource="nvidia.com/mig-3g.40gb")
    node = GpuNodeFactory(cluster=world.cluster, name="a100-mig", mig=True)
    for i in range(2):
        PodFactory(deployment=dep, node=node, name=f"mistral-{i}", gpu_requests={"nvidia.com/mig-3g.40gb": 1})

    html = controls(login(viewer), dep)

    # 2 slices of 3/7 of an A100 at 27.44705/8 per GPU-hour: 2 x 1.4703777 = $2.94/h.
    assert "<strong>$2.94/h</strong> for 2 replicas" in html
    assert "0.86 GPUs at $3.43/GPU-hour" in html
    assert 'one <span class="mono">3g.40gb</span> slice $1.47/h' in html


def test_the_panel_says_when_its_nodes_have_no_price(world, viewer):
    dep = world.deployment(replicas=1)
    PodFactory(deployment=dep, node=GpuNodeFactory(cluster=world.cluster, instance_type="p9.mega"), name="llama-0")

    html = controls(login(viewer), dep)

    assert "no price</span>" in html and "$0.00" not in html
