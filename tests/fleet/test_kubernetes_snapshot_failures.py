"""A failed snapshot of the Kubernetes backend leaves nothing behind."""

from __future__ import annotations

import threading

import pytest

from fleet.backends.base import BackendError
from fleet.backends.kubernetes.backend import KubernetesClusterBackend
from tests.fakekube import objects as o


def test_it_leaves_no_list_running_after_a_failed_snapshot(fake_kube, fake_kubeconfig):
    # A list still in flight when the snapshot gives up would outlive the sync: it holds the
    # client's connections and logs its retries after the one-line failure was reported.
    fake_kube.load(o.realistic_cluster())
    fake_kube.fail("/api/v1/pods", 401)
    fake_kube.delay(0.5, path="/api/v1/nodes")

    with pytest.raises(BackendError, match=r"credentials refused \(401\)"):
        KubernetesClusterBackend(kubeconfig_path=str(fake_kubeconfig)).snapshot()

    assert [t.name for t in threading.enumerate() if t.name.startswith("k8s-list")] == []
    assert fake_kube.requests_to("/api/v1/nodes")  # it was in flight, and was waited for
