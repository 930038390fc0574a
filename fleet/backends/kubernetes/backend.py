"""`KubernetesClusterBackend`: one cluster's API server, read, watched and written.

The parts live in their own modules (see the package docstring); this class puts them together.
"""

from __future__ import annotations

from fleet.backends.kubernetes.lease import KubernetesLease
from fleet.backends.kubernetes.nodes import KubernetesNodes
from fleet.backends.kubernetes.reading import KubernetesReading


class KubernetesClusterBackend(KubernetesReading, KubernetesNodes, KubernetesLease):
    """A Kubernetes cluster through the official client. Implements all of `ClusterBackend` (the
    reads, the writes, the node operations of MIG repartitioning), plus the lists and watches
    `fleet.watch` keeps a watched cluster current with, and the Lease of an in-cluster watcher.

    Nothing is loaded or contacted until the first call, so building one never fails; every
    failure later is a `BackendError` with a one-line reason (a `ConflictError` on 409).
    `namespaces` is the allow-list: empty reads every namespace and allows no writes.
    """
