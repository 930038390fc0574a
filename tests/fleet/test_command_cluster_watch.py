"""`manage.py cluster_watch`: what it refuses before it starts watching."""

from __future__ import annotations

import os
import signal
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from fleet.models import Cluster, Pod
from fleet.watch.lease import cluster_is_watched
from tests.factories import ClusterFactory
from tests.fakekube import objects as o


@pytest.mark.django_db
def test_it_refuses_a_simulated_cluster():
    ClusterFactory(name="demo", backend=Cluster.Backend.SIMULATED)
    with pytest.raises(CommandError, match="cluster demo is simulated: the beat's sync keeps it current"):
        call_command("cluster_watch", "demo")


@pytest.mark.django_db
def test_it_names_the_known_clusters_for_an_unknown_one():
    ClusterFactory(name="prod")
    with pytest.raises(CommandError, match=r"no cluster named 'prd' \(known: prod\)"):
        call_command("cluster_watch", "prd")


@pytest.mark.django_db
def test_it_refuses_a_resync_interval_out_of_range():
    with pytest.raises(CommandError, match="--resync-minutes 0.5 must be between 1 and 1440"):
        call_command("cluster_watch", "--resync-minutes", "0.5")


@pytest.mark.django_db(transaction=True)
def test_it_watches_until_told_to_stop_then_hands_the_cluster_back(fake_kube, fake_kubeconfig):
    fake_kube.load(o.realistic_cluster())
    cluster = ClusterFactory(name="prod", kubeconfig_path=str(fake_kubeconfig), namespaces=[], watch_holder="")

    def stop_once_synced() -> None:
        deadline = time.monotonic() + 60  # generous for a loaded machine; a passing run is quick
        while not Pod.objects.filter(cluster=cluster).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)  # the command's handler is in place by then

    stopper = threading.Thread(target=stop_once_synced)
    stopper.start()
    out = StringIO()
    call_command("cluster_watch", "prod", stdout=out)
    stopper.join()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("prod: watching (lease held by ")
    assert lines[-1] == "cluster_watch stopped"
    assert Pod.objects.filter(cluster=cluster).exists()
    assert not cluster_is_watched(Cluster.objects.get(id=cluster.id), timezone.now())
