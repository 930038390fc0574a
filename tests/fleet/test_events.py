"""Scaling events: read by the Kubernetes backend from a fake API over real HTTP, stored once, pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from fleet.events import scaling_events_prune
from fleet.models import Cluster, ScalingEvent
from fleet.sync import cluster_sync
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world
from tests.fakekube import story

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(fake_kube, fake_kubeconfig):
    return Cluster.objects.create(name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(fake_kubeconfig))


def sync(cluster, kubeconfig, **kwargs):
    """A sync 20 minutes after the story began (its events are within their retention)."""
    with time_machine.travel(story.BASE + timedelta(minutes=20), tick=True):
        return _sync(cluster, kubeconfig, **kwargs)


def _sync(cluster, kubeconfig, **kwargs):
    backend = KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), **kwargs)
    result = cluster_sync(cluster=cluster, backend=backend)
    assert result.ok, result.error
    return result


def kinds_of(events) -> list[tuple[str, str]]:
    return [(e.kind, e.object_name) for e in events]


def test_it_stores_events_pod_conditions_and_nodeclaims_of_the_story(fake_kube, fake_kubeconfig, cluster):
    fake_kube.load(story.scale_up_story())

    sync(cluster, fake_kubeconfig)

    events = ScalingEvent.objects.filter(cluster=cluster)
    kinds = {e.kind for e in events}
    assert {
        "metric_above_target",
        "desired_changed",
        "pod_created",
        "scheduling_failed",
        "nodeclaim_launched",
        "node_registered",
        "node_ready",
        "pod_scheduled",
        "image_pulling",
        "image_pulled",
        "container_started",
        "pod_ready",
    } <= kinds
    failed = events.filter(kind="scheduling_failed").first()
    assert "Insufficient nvidia.com/gpu" in failed.message
    assert failed.deployment.name == "llama"
    launched = events.get(kind="nodeclaim_launched")
    assert (launched.node_name, launched.node_pool) == (story.NEW_NODE, story.POOL)
    assert launched.at == story.STORY["launched"]
    assert launched.deployment is None


def test_it_stores_each_event_once_however_often_it_syncs(fake_kube, fake_kubeconfig, cluster):
    fake_kube.load(story.scale_up_story())
    first = sync(cluster, fake_kubeconfig)
    stored = ScalingEvent.objects.count()

    again = sync(cluster, fake_kubeconfig)

    assert first.created["events"] == stored > 0
    assert again.created["events"] == 0
    assert ScalingEvent.objects.count() == stored


def test_it_stores_a_repeated_event_as_a_new_occurrence(fake_kube, fake_kubeconfig, cluster):
    fake_kube.load(story.scale_up_story())
    sync(cluster, fake_kubeconfig)
    failed = [obj for obj in story.scale_up_story() if obj.get("reason") == "FailedScheduling"][0]
    failed["series"] = {"count": 3, "lastObservedTime": "2025-03-01T03:04:00.000000Z"}
    fake_kube.load(failed)

    sync(cluster, fake_kubeconfig)

    occurrences = ScalingEvent.objects.filter(uid=failed["metadata"]["uid"]).order_by("count")
    assert [(e.count, e.at.minute) for e in occurrences] == [(1, 2), (3, 4)]


def test_it_falls_back_to_core_v1_events(fake_kube, fake_kubeconfig, cluster):
    fake_kube.uninstall("events.k8s.io")
    fake_kube.load(story.scale_up_story(events_api="v1"))

    sync(cluster, fake_kubeconfig)

    assert ScalingEvent.objects.filter(kind="image_pulled").count() == 4
    assert fake_kube.requests_to("/api/v1/events")


def test_it_reads_one_list_per_kind_in_each_allowed_namespace(fake_kube, fake_kubeconfig, cluster):
    fake_kube.load(story.scale_up_story())

    sync(cluster, fake_kubeconfig, namespaces=("llm", "batch"))

    event_lists = fake_kube.requests_to("/apis/events.k8s.io/v1/")
    assert sorted(r.path for r in event_lists) == [
        "/apis/events.k8s.io/v1/namespaces/batch/events",
        "/apis/events.k8s.io/v1/namespaces/llm/events",
    ]
    assert [r.path for r in fake_kube.requests_to("/apis/karpenter.sh/v1/nodeclaims")] == [
        "/apis/karpenter.sh/v1/nodeclaims"
    ]


def test_it_reads_no_nodeclaims_without_karpenter(fake_kube, fake_kubeconfig, cluster):
    fake_kube.uninstall("karpenter.sh")
    fake_kube.load([obj for obj in story.scale_up_story() if obj["apiVersion"] != "karpenter.sh/v1"])

    sync(cluster, fake_kubeconfig)

    assert not ScalingEvent.objects.filter(source="nodeclaim").exists()
    assert ScalingEvent.objects.filter(kind="pod_ready").count() == 6


def test_it_skips_odd_events_with_a_warning_and_keeps_the_rest(fake_kube, fake_kubeconfig, cluster):
    fake_kube.load(story.scale_up_story())
    fake_kube.load_raw("Event", "not an object", namespace="llm", api_version="events.k8s.io/v1")
    fake_kube.load_raw(
        "Event",
        {"metadata": {"name": "no-uid", "namespace": "llm"}, "regarding": {"kind": "Pod", "name": "x"}},
        namespace="llm",
        api_version="events.k8s.io/v1",
    )
    fake_kube.load_raw(
        "NodeClaim", {"metadata": {"name": "odd"}, "status": {"conditions": "broken"}}, api_version="karpenter.sh/v1"
    )

    result = sync(cluster, fake_kubeconfig)

    assert any("skipped event" in w for w in result.warnings)
    assert ScalingEvent.objects.filter(kind="image_pulled").count() == 4


def test_it_prunes_events_past_their_retention(fake_kube, fake_kubeconfig, cluster, settings):
    settings.SCALEDECK_EVENT_RETENTION_DAYS = 14
    fake_kube.load(story.scale_up_story())
    sync(cluster, fake_kubeconfig)
    stored = ScalingEvent.objects.count()

    # The two pods from 9 days before the story (created, scheduled, ready) pass 14 days first.
    assert scaling_events_prune(now=story.BASE + timedelta(days=4)) == 0
    assert scaling_events_prune(now=story.BASE + timedelta(days=6)) == 6
    assert not ScalingEvent.objects.filter(at__lt=story.BASE).exists()
    assert scaling_events_prune(now=story.BASE + timedelta(days=15)) == stored - 6
    assert not ScalingEvent.objects.exists()


def test_it_stores_the_same_kinds_of_events_from_the_simulated_cluster(db):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    world = demo_world(seed=7, now=now, warmup_hours=1)
    world.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=30, max_replicas=30)  # more than the free GPUs
    world.advance_to(now + timedelta(minutes=40))
    cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED)
    with time_machine.travel(now + timedelta(minutes=40), tick=False):
        DbWorldStore(cluster).replace(world, seed=7)
        first = cluster_sync(cluster=cluster)
        again = cluster_sync(cluster=cluster)

    assert first.ok and first.created["events"] > 0 and again.created["events"] == 0
    llama = ScalingEvent.objects.filter(deployment__name="llama-3-8b")
    assert {
        "metric_above_target",
        "desired_changed",
        "pod_created",
        "scheduling_failed",
        "pod_scheduled",
        "image_pulled",
        "container_started",
        "pod_ready",
        "first_token",
    } <= set(llama.values_list("kind", flat=True))
    # A new replica serves its first token once Ready, within the minute its deployment serves.
    ready = dict(llama.filter(kind="pod_ready").values_list("object_name", "at"))
    for pod, at in llama.filter(kind="first_token").values_list("object_name", "at"):
        assert timedelta(0) <= at - ready[pod] < timedelta(minutes=1)
    assert ScalingEvent.objects.filter(kind="nodeclaim_launched", deployment=None).exclude(node_pool="").exists()
