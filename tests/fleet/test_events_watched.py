"""A cluster kept by `cluster_watch` still gets its Events and NodeClaims stored: the beat's turn
lists only those two (fleet.events.watched_cluster_events_record)."""

from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

from fleet.models import EventKind, ScalingEvent
from fleet.tasks import sync_cluster
from fleet.watch.lease import watch_lease_hold
from tests.factories import ClusterFactory
from tests.fakekube import story

pytestmark = pytest.mark.django_db


def test_the_beat_stores_the_events_of_a_watched_cluster_with_two_list_calls(fake_kube, fake_kubeconfig):
    cluster = story.sync_story(fake_kube, fake_kubeconfig)
    stored = set(ScalingEvent.objects.values_list("uid", "kind"))
    ScalingEvent.objects.all().delete()  # as if the watcher had kept the cluster since before the story
    watch_lease_hold(cluster_id=cluster.id, holder="watcher-1", now=timezone.now(), synced=True)
    fake_kube.clear_requests()

    with time_machine.travel(story.SYNCED_AT, tick=False):
        watch_lease_hold(cluster_id=cluster.id, holder="watcher-1", now=timezone.now(), synced=True)
        summary = sync_cluster(cluster.id)

    assert "kept current by its watcher (watcher-1)" in summary
    listed = sorted({r.path for r in fake_kube.requests if r.method == "GET"})
    assert listed == ["/apis/events.k8s.io/v1/events", "/apis/karpenter.sh/v1/nodeclaims"]
    again = set(ScalingEvent.objects.values_list("uid", "kind"))
    # Everything but the pod conditions (the watcher's pods carry no condition times) comes back.
    from_lists = {(uid, kind) for uid, kind in stored if not uid.startswith("pod:")}
    assert from_lists and from_lists <= again
    kinds = set(ScalingEvent.objects.values_list("kind", flat=True))
    assert {
        EventKind.DESIRED_CHANGED,
        EventKind.SCHEDULING_FAILED,
        EventKind.NODECLAIM_LAUNCHED,
        EventKind.NODE_READY,
    } <= kinds
    assert ScalingEvent.objects.filter(kind=EventKind.SCHEDULING_FAILED).exclude(deployment=None).count() == 4

    with time_machine.travel(story.SYNCED_AT, tick=False):
        sync_cluster(cluster.id)
    assert set(ScalingEvent.objects.values_list("uid", "kind")) == again  # stored once


def test_a_watched_cluster_whose_events_cannot_be_read_still_gets_its_turn(tmp_path):
    # No kubeconfig: listing the events fails; the turn says so instead of failing.
    cluster = ClusterFactory(kubeconfig_path=str(tmp_path / "missing"), watch_holder="", watch_lease_until=None)
    watch_lease_hold(cluster_id=cluster.id, holder="watcher-1", now=timezone.now(), synced=True)
    summary = sync_cluster(cluster.id)
    assert "kept current by its watcher (watcher-1)" in summary
    assert "events not read" in summary


def test_the_simulated_backend_hands_over_the_same_story_without_a_sync(db):
    from datetime import UTC, datetime, timedelta

    from fleet.events import watched_cluster_events_record
    from fleet.models import Cluster
    from fleet.sync import cluster_sync
    from fleet.world_store import DbWorldStore
    from simulator.demo import demo_world

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    world = demo_world(seed=7, now=now, warmup_hours=1)
    world.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=30, max_replicas=30)
    world.advance_to(now + timedelta(minutes=40))
    cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED)
    with time_machine.travel(now + timedelta(minutes=40), tick=False):
        DbWorldStore(cluster).replace(world, seed=7)
        assert cluster_sync(cluster=cluster).ok
        synced = set(ScalingEvent.objects.values_list("uid", flat=True))
        ScalingEvent.objects.all().delete()
        summary = watched_cluster_events_record(cluster=cluster, now=timezone.now())

    assert summary == f"{len(synced)} new event(s)"
    assert set(ScalingEvent.objects.values_list("uid", flat=True)) == synced
