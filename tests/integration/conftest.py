"""A real Celery worker that a test can SIGKILL and start again, as a supervisor would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_QUEUE, database_url_for_subprocess, tasks_sent_to


class Worker:
    """`python -m celery -A config worker` on the test database and Redis, with config/celery.py's
    defaults unless `pool` says otherwise. Every start appends to one log."""

    def __init__(self, *, broker: str, data_dir: Path, pool: str | None = None):
        self.log = data_dir / "worker.log"
        self.env = {
            **os.environ,
            "CELERY_BROKER_URL": broker,
            "DATABASE_URL": database_url_for_subprocess(),
            "SCALEDECK_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CELERY_TASK_DEFAULT_QUEUE": TEST_QUEUE,
        }
        if pool:
            self.env["SCALEDECK_WORKER_POOL"] = pool
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        started = self.text().count(" ready.")
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname",
                    f"crash-{os.getpid()}@localhost",
                    "--queues",
                    TEST_QUEUE,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while self.text().count(" ready.") <= started:
            if self.proc.poll() is not None:
                pytest.fail(f"celery worker exited:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"celery worker did not become ready in 60 s:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def pool_processes(self) -> list[int]:
        """The pids whose parent is the worker's main process (a prefork pool's children)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL the main process and whatever of its session is left (as a container restart does)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # nothing else was in its session
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def worker(request, redis_url, transactional_db, tmp_path) -> Iterator[Worker]:
    """A started worker the test may kill and start again; this process sends to the same queue.
    Parametrized indirectly (`["prefork"]`), it runs that pool instead of config/celery.py's default."""
    process = Worker(broker=redis_url, data_dir=tmp_path, pool=getattr(request, "param", None))
    process.start()
    try:
        with tasks_sent_to(redis_url):
            yield process
    finally:
        process.stop()
