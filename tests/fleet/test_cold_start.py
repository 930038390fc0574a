"""Cold starts measured from stored events: the 14-minute story's split, percentiles, pools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.models import Role
from fleet.cold_start import cold_start_stats, deployment_cold_starts, node_starts, percentile
from fleet.models import ModelDeployment
from tests.factories import UserFactory
from tests.fakekube import story

T0 = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)


def test_it_interpolates_percentiles_between_ranks():
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 100.0], 0.95) == 95.0


def test_it_leaves_out_a_part_it_has_no_events_for_rather_than_counting_zero():
    pods = [{"pod_created": T0, "pod_scheduled": T0 + timedelta(seconds=10), "pod_ready": T0 + timedelta(seconds=100)}]

    stats = cold_start_stats(pods)

    assert (stats.samples, stats.p95_seconds, stats.scheduling_p95_seconds) == (1, 100.0, 10.0)
    assert stats.pull_p95_seconds is None and stats.load_p95_seconds is None


def test_it_counts_only_pods_seen_from_creation_to_ready():
    assert cold_start_stats([{"pod_created": T0}, {"pod_ready": T0}]).samples == 0
    assert cold_start_stats([]).p50_seconds is None


@pytest.mark.django_db
def test_it_measures_the_story_split_into_scheduling_pull_and_load(fake_kube, fake_kubeconfig):
    cluster = story.sync_story(fake_kube, fake_kubeconfig)
    llama = ModelDeployment.objects.get(name=story.NAME)

    stats = deployment_cold_starts([llama], now=story.SYNCED_AT)[llama.id]

    # 4 new pods: created 03:02:30, scheduled 03:09:05+i, pulled 03:11:00+i, started 03:11:05+i, ready 03:15:00+i.
    assert stats.samples == 4  # the two pods from 9 days earlier are outside the 7-day window
    assert (stats.p50_seconds, stats.max_seconds) == (751.5, 753.0)
    assert stats.p95_seconds == pytest.approx(752.85)
    assert stats.scheduling_p95_seconds == pytest.approx(397.85)
    assert stats.pull_p95_seconds == 115.0
    assert stats.load_p95_seconds == 235.0

    pools = node_starts(cluster_ids=[cluster.id], now=story.SYNCED_AT)
    assert pools[(cluster.id, story.POOL)].p95_seconds == 380.0  # launched 03:02:40 -> ready 03:09:00
    assert pools[(cluster.id, story.POOL)].samples == 1


@pytest.mark.django_db
def test_it_reads_many_deployments_in_one_query(fake_kube, fake_kubeconfig, django_assert_num_queries):
    story.sync_story(fake_kube, fake_kubeconfig)
    deployments = list(ModelDeployment.objects.all())

    with django_assert_num_queries(1):
        stats = deployment_cold_starts(deployments, now=story.SYNCED_AT)

    assert set(stats) == {d.id for d in deployments}


@pytest.mark.django_db
def test_the_nodes_page_shows_how_long_a_new_node_of_each_pool_takes(client, fake_kube, fake_kubeconfig):
    story.sync_story(fake_kube, fake_kubeconfig)
    client.force_login(UserFactory(role=Role.VIEWER))

    with time_machine.travel(story.SYNCED_AT, tick=False):
        html = client.get("/nodes/").content.decode()

    assert "new node ready in p50 6 min 20 s, p95 6 min 20 s (1 launch in 7 days)" in html
