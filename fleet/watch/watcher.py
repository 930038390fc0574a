"""A cluster's watcher: its informers, their events gathered into small batches, the lease.

`ClusterWatcher` runs one informer per kind the sync reads (per allow-listed namespace for the
namespaced kinds) and turns what they deliver into database writes. The first lists are
applied as one full sync (`cluster_sync` over the informers' caches: the same code, the same
result on the Cluster row). After that, events are gathered into a batch until the stream has
been quiet for `quiet_seconds` or `max_wait_seconds` have passed since the batch's first event
(a debounce: a rollout's hundred pod updates become one transaction, a single pod turning Ready
reaches the database well within 2 s), and only the objects whose facts changed are written
(`fleet.watch.apply`). A batch whose write fails leaves the facts unknown: the next batch is a
full apply again, so nothing is silently dropped.

`cluster_watch_run` is the long-running loop of one cluster: wait for the lease, watch while it
is ours (renewing it), stop when told to or when the lease is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import DatabaseError, connection
from django.utils import timezone

from fleet.backends.base import BackendError, WatchLease
from fleet.backends.registry import cluster_backend, cluster_watch_lease
from fleet.models import Cluster
from fleet.replica_history import replica_changes_record
from fleet.sync import SyncResult, cluster_sync
from fleet.watch.apply import changes_apply
from fleet.watch.informer import Informer
from fleet.watch.lease import RENEW_SECONDS, STANDBY_POLL_SECONDS, cluster_lease_hold, watch_lease_release
from fleet.watch.state import KINDS, ClusterState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    events: int  # watch events gathered
    changed: int  # facts that changed (what was written)
    first_event_at: float  # time.monotonic() of its first event
    applied_at: float  # time.monotonic() when committed
    statements: int  # SQL statements the batch ran
    writes: int  # of which INSERT / UPDATE / DELETE
    result: SyncResult


class _Statements:
    """Counts the SQL statements run on this thread's connection (a `connection.execute_wrapper`)."""

    def __init__(self) -> None:
        self.total = 0
        self.writes = 0

    def __call__(self, execute, sql, params, many, context):
        self.total += 1
        self.writes += sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        return execute(sql, params, many, context)


class _Listed:
    """The informers' caches as a backend `cluster_sync` can read (the first apply)."""

    def __init__(self, state: ClusterState, warnings: list[str]):
        self.state = state
        self.warnings = warnings

    def snapshot(self):
        return self.state.snapshot(datetime.now(UTC))

    def last_warnings(self) -> list[str]:
        return list(self.warnings)

    def gpu_assignments(self) -> None:
        """None, as for any Kubernetes cluster: the sync infers who holds which device."""
        return None


class ClusterWatcher:
    def __init__(
        self,
        cluster: Cluster,
        *,
        backend=None,
        quiet_seconds: float = 0.3,
        max_wait_seconds: float = 1.5,
        resync_seconds: float = 1800.0,
        watch_timeout_seconds: int = 300,
        backoff_first_seconds: float = 1.0,
    ):
        self.cluster = cluster
        self.backend = backend or cluster_backend(cluster)
        self.quiet_seconds = quiet_seconds
        self.max_wait_seconds = max_wait_seconds
        self.state = ClusterState()
        self.events: queue.Queue = queue.Queue()
        self.informers = [
            Informer(
                self.backend,
                kind,
                namespace,
                self.events,
                resync_seconds=resync_seconds,
                watch_timeout_seconds=watch_timeout_seconds,
                backoff_first_seconds=backoff_first_seconds,
            )
            for kind, namespaced in KINDS.items()
            for namespace in self.backend.watch_scopes(kind, namespaced)
        ]
        self.first_sync: SyncResult | None = None
        self.first_list_seconds = 0.0  # start to every first list in (the API server's share and parsing JSON)
        self.first_read_seconds = 0.0  # reading the lists into facts
        self.batches: list[Batch] = []
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()
        for informer in self.informers:
            informer.join(timeout=5)

    @property
    def error(self) -> str:
        """Why an informer fails right now, "" while all of them work."""
        return next((i.error for i in self.informers if i.error), "")

    @property
    def lists(self) -> int:
        """List calls made so far, all informers together."""
        return sum(i.lists for i in self.informers)

    def _take(self, message: tuple) -> None:
        if message[0] == "event":
            self.state.event(message[1], message[2], message[3])
        elif message[0] == "replace":
            self.state.replace(message[1], message[3], namespace=message[2])
        else:
            self.state.not_served(message[1])

    def step(self, timeout: float) -> SyncResult | None:
        """Wait up to `timeout` for events, gather one batch, apply it. What was written, or None."""
        try:
            message = self.events.get(timeout=timeout)
        except queue.Empty:
            # After a failed write the next apply is a full one, whether or not anything changes.
            return self._first_apply() if self.first_sync is None else None
        first_at = time.monotonic()
        self._take(message)
        gathered = 1
        deadline = first_at + self.max_wait_seconds
        while (left := min(self.quiet_seconds, deadline - time.monotonic())) > 0:
            try:
                self._take(self.events.get(timeout=left))
            except queue.Empty:
                break
            gathered += 1
        if self.first_sync is None:
            return self._first_apply()
        changes = self.state.take_changes()
        if not changes:
            return None
        statements = _Statements()
        now = timezone.now()
        try:
            with connection.execute_wrapper(statements):
                result = changes_apply(cluster=self.cluster, state=self.state, changes=changes, now=now)
                if changes.deployments:  # the replicas chart's own history, as after a full sync
                    replica_changes_record(cluster=self.cluster, at=now)
        except DatabaseError:
            self.state.forget_facts()
            self.first_sync = None
            raise
        self.batches.append(
            Batch(gathered, changes.count(), first_at, time.monotonic(), statements.total, statements.writes, result)
        )
        return result

    def _first_apply(self) -> SyncResult | None:
        if not all(i.synced.is_set() for i in self.informers):
            return None
        while True:  # every first list is in: take whatever else is queued too
            try:
                self._take(self.events.get_nowait())
            except queue.Empty:
                break
        self.first_list_seconds = time.monotonic() - self._started
        started = time.monotonic()
        changes = self.state.take_changes()
        self.first_read_seconds = time.monotonic() - started
        try:
            result = cluster_sync(cluster=self.cluster, backend=_Listed(self.state, changes.warnings))
        except DatabaseError:
            self.state.forget_facts()
            raise
        replica_changes_record(cluster=self.cluster, at=result.taken_at or timezone.now())
        self.first_sync = result
        return result


def cluster_watch_run(
    *,
    cluster: Cluster,
    holder: str,
    stop: threading.Event,
    say: Callable[[str], None] = logger.info,
    **watcher_options,
) -> None:
    """Watch `cluster` whenever this process holds its lease (both leases, in-cluster), until `stop` is set."""
    kube_lease = cluster_watch_lease(cluster)
    try:
        while not stop.is_set():
            if not _lease_hold(cluster, kube_lease, holder, say):
                stop.wait(STANDBY_POLL_SECONDS)
                continue
            say(f"{cluster.name}: watching (lease held by {holder})")
            _watch_while_leased(cluster, kube_lease, holder, stop, say, watcher_options)
    finally:
        watch_lease_release(cluster_id=cluster.id, holder=holder)
        if kube_lease is not None:
            kube_lease.close()
        connection.close()


def _lease_hold(cluster, kube_lease: WatchLease | None, holder: str, say, **renewal) -> bool:
    """Both leases held; a Kubernetes API that cannot be asked counts as not held (said once per try)."""
    try:
        return cluster_lease_hold(cluster=cluster, kube_lease=kube_lease, holder=holder, now=timezone.now(), **renewal)
    except BackendError as exc:
        say(f"{cluster.name}: cannot hold the Kubernetes Lease ({exc})")
        return False


def _watch_while_leased(cluster, kube_lease, holder, stop, say, watcher_options) -> None:
    watcher = ClusterWatcher(cluster, **watcher_options)
    watcher.start()
    renew_at = time.monotonic() + RENEW_SECONDS
    try:
        while not stop.is_set():
            try:
                result = watcher.step(timeout=max(0.05, min(1.0, renew_at - time.monotonic())))
            except DatabaseError as exc:
                say(f"{cluster.name}: could not write a batch ({exc}); the next one is a full apply")
                stop.wait(STANDBY_POLL_SECONDS)
                continue
            if result is not None and (result is watcher.first_sync or not result.ok):
                say(result.summary())
            if time.monotonic() >= renew_at:
                held = _lease_hold(
                    cluster, kube_lease, holder, say, synced=watcher.first_sync is not None, error=watcher.error
                )
                if not held:
                    say(f"{cluster.name}: lease lost to another watcher; standing by")
                    watch_lease_release(cluster_id=cluster.id, holder=holder)  # the new holder needs both
                    return
                renew_at = time.monotonic() + RENEW_SECONDS
    finally:
        watcher.stop()
