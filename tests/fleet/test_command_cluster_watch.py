"""`manage.py cluster_watch`: what it refuses before it starts watching."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from fleet.models import Cluster
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def test_it_refuses_a_simulated_cluster():
    ClusterFactory(name="demo", backend=Cluster.Backend.SIMULATED)
    with pytest.raises(CommandError, match="cluster demo is simulated: the beat's sync keeps it current"):
        call_command("cluster_watch", "demo")


def test_it_names_the_known_clusters_for_an_unknown_one():
    ClusterFactory(name="prod")
    with pytest.raises(CommandError, match=r"no cluster named 'prd' \(known: prod\)"):
        call_command("cluster_watch", "prd")


def test_it_refuses_a_resync_interval_out_of_range():
    with pytest.raises(CommandError, match="--resync-minutes 0.5 must be between 1 and 1440"):
        call_command("cluster_watch", "--resync-minutes", "0.5")
