"""`manage.py demo_run [--port 8000]`: the web server, a Celery worker and beat, together; Ctrl-C stops all.

The worker and beat use the default broker, which needs no server (a folder under var/), so a
fresh machine runs the whole product with no services.
With a Kubernetes cluster registered it also runs `cluster_watch`; the demo's simulated
cluster has nothing to watch (the beat syncs it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleet.models import Cluster


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
        children = [
            subprocess.Popen([python, manage, "runserver", f"{host}:{port}", "--noreload"]),
            subprocess.Popen(
                [
                    python, "-m", "celery", "-A", "config", "worker", "--beat",
                    "--concurrency", "2", "--loglevel", "WARNING",
                    "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
                ],
                cwd=settings.BASE_DIR,
            ),
        ]
        if Cluster.objects.filter(backend=Cluster.Backend.KUBERNETES).exists():
            # Kubernetes clusters are kept current by watches; simulated ones by the beat's sync.
            children.append(subprocess.Popen([python, manage, "cluster_watch"]))
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
                for child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{child.args[2]} exited with {child.returncode}; stopping the demo")
                        stopping = True
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            self.stdout.write("demo stopped")
