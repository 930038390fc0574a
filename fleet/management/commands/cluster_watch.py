"""`manage.py cluster_watch [NAME...]`: keep Kubernetes clusters current through watches.

One long-running process (run two for failover: the second stands by). For each cluster it
waits for the cluster's lease, then lists every kind once and watches from there
(`fleet.watch`). With no names it watches every Kubernetes cluster, and picks up clusters
added later; simulated clusters are left to the beat's sync. SIGTERM or Ctrl-C stops it and
gives the leases back, so the beat takes the clusters over at its next tick.
"""

from __future__ import annotations

import os
import signal
import socket
import threading

from django.core.management.base import BaseCommand, CommandError

from fleet.models import Cluster
from fleet.watch.watcher import cluster_watch_run

RESCAN_SECONDS = 30.0


class Command(BaseCommand):
    help = "Keep Kubernetes clusters current through watches (one active watcher per cluster, by lease)."

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", metavar="NAME", help="clusters to watch (default: every Kubernetes one)"
        )
        parser.add_argument(
            "--resync-minutes",
            type=float,
            default=30.0,
            help="list everything again this often, against a missed event (default 30)",
        )

    def handle(self, *args, names: list[str], resync_minutes: float, **options):
        if not 1 <= resync_minutes <= 24 * 60:
            raise CommandError(f"--resync-minutes {resync_minutes:g} must be between 1 and 1440")
        clusters = self._named(names) if names else self._kubernetes()
        if not clusters and names:
            raise CommandError("nothing to watch")
        if not clusters:
            self.stdout.write("no Kubernetes clusters to watch yet (simulated clusters are synced by the beat)")
        holder = f"{socket.gethostname()}:{os.getpid()}"
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        running: dict[int, threading.Thread] = {}
        try:
            while not stop.is_set():
                for cluster in clusters:
                    # A watch loop that died (its database went away) is started again at this pace.
                    if cluster.id not in running or not running[cluster.id].is_alive():
                        running[cluster.id] = self._start(cluster, holder, stop, resync_minutes * 60)
                stop.wait(RESCAN_SECONDS)
                if not names:
                    clusters = self._kubernetes()
        finally:
            stop.set()
            for thread in running.values():
                thread.join(timeout=15)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("cluster_watch stopped")

    def _named(self, names: list[str]) -> list[Cluster]:
        found = {c.name: c for c in Cluster.objects.filter(name__in=names)}
        for name in names:
            if name not in found:
                known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no cluster named {name!r} (known: {known})")
            if found[name].backend != Cluster.Backend.KUBERNETES:
                raise CommandError(
                    f"cluster {name} is simulated: the beat's sync keeps it current, there is nothing to watch"
                )
        return [found[name] for name in dict.fromkeys(names)]

    def _kubernetes(self) -> list[Cluster]:
        return list(Cluster.objects.filter(backend=Cluster.Backend.KUBERNETES))

    def _start(self, cluster: Cluster, holder: str, stop: threading.Event, resync_seconds: float) -> threading.Thread:
        thread = threading.Thread(
            target=cluster_watch_run,
            kwargs={
                "cluster": cluster,
                "holder": holder,
                "stop": stop,
                "say": lambda line: self.stdout.write(line),
                "resync_seconds": resync_seconds,
            },
            name=f"watch-{cluster.name}",
            daemon=True,
        )
        thread.start()
        return thread
