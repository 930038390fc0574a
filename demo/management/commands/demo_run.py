"""`manage.py demo_run [--port 8000]`: the web server, a Celery worker and beat, together; Ctrl-C stops all.

The worker and beat use the default broker, which needs no server (a folder under var/), so a
fresh machine runs the whole product with no services.
With a Kubernetes cluster registered it also runs `cluster_watch`; the demo's simulated
cluster has nothing to watch (the beat syncs it).

The runner is the demo's supervisor: a worker, beat or watch that exits (the OOM killer's SIGKILL,
a crash) is started again after a pause, as Kubernetes would restart its container (see
config/celery.py: the worker may exit rather than wedge). Each runs in its own session, so what a
killed process leaves behind (a prefork pool's children) goes with it. Only the web server's exit
stops the demo, and a child that keeps dying (RESTART_LIMIT times in RESTART_WINDOW_SECONDS).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleet.models import Cluster

RESTART_PAUSE_SECONDS = 1.0
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0


@dataclass
class Child:
    """One supervised process: its command, whether it is restarted, and its recent restarts."""

    name: str
    args: list[str]
    restart: bool = True
    proc: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, cwd=settings.BASE_DIR, start_new_session=self.restart)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def clear_leftovers(self) -> None:
        """SIGKILL what is left of the child's own session (only that session: nothing else)."""
        if self.restart and self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return  # nothing left


def supervise_once(children: list[Child], *, now: float, log) -> str | None:
    """Restart what exited; return why the demo must stop, or None."""
    for child in children:
        code = child.exited()
        if code is None:
            continue
        if not child.restart:
            return f"{child.name} exited with {code}; stopping the demo"
        child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_SECONDS]
        if len(child.restarts) >= RESTART_LIMIT:
            return (
                f"{child.name} exited {RESTART_LIMIT + 1} times within {RESTART_WINDOW_SECONDS:.0f} s; "
                "stopping the demo"
            )
        log(f"{child.name} exited with {code}; starting it again")
        child.clear_leftovers()
        child.restarts.append(now)
        child.start()
    return None


class Command(BaseCommand):
    help = "Run the web server with a Celery worker and beat (no external broker needed)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port: int, host: str, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port")
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "config"]
        children = [
            Child("the web server", [python, manage, "runserver", f"{host}:{port}", "--noreload"], restart=False),
            # The pool and concurrency are config/celery.py's defaults (threads: nothing to wedge).
            Child("the worker", [*celery, "worker", "--loglevel", "WARNING"]),
            Child(
                "beat", [*celery, "beat", "--loglevel", "WARNING", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
            ),
        ]
        if Cluster.objects.filter(backend=Cluster.Backend.KUBERNETES).exists():
            # Kubernetes clusters are kept current by watches; simulated ones by the beat's sync.
            children.append(Child("cluster_watch", [python, manage, "cluster_watch"]))
        for child in children:
            child.start()
        self.stdout.write(
            f"\nScaleDeck demo: http://{host}:{port}/\n"
            f"Log in as admin / {settings.SCALEDECK_DEMO_PASSWORD} "
            f"(also operator and viewer, same password). Ctrl-C stops everything.\n"
        )
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                why = supervise_once(children, now=time.monotonic(), log=self.stderr.write)
                if why:
                    self.stderr.write(why)
                    break
                time.sleep(RESTART_PAUSE_SECONDS)
        finally:
            running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
            for proc in running:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in running:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
            for child in children:
                child.clear_leftovers()
            self.stdout.write("demo stopped")
