"""How long a Celery worker takes to process new work again after one of its processes is SIGKILLed.

    .venv/bin/python bench/worker_recovery.py [--rounds 10] [--pools threads,prefork,solo]
        [--brokers redis,filesystem] [--redis redis://127.0.0.1:6379/13]

For each pool and broker: start `python -m celery -A config worker` (as deploy/ and `make demo`
do, with a scratch SQLite database), then, each round, queue 30 tasks, SIGKILL one of its
processes at a random moment while they run (a pool child for prefork, as the OOM killer picks
it; the main process otherwise, and for prefork too in its own rows), restart the worker at once
when its main process is gone (what a supervisor does: Kubernetes, `make demo`'s runner), and time
from the kill until the first task is done again, and until a task sent just after the kill is
done (it waits behind what was queued). A round that waits more than --wedged seconds counts as
wedged, unless a task sent then is processed (the worker goes on; its task was lost: a Redis BRPOP
open in a dying process can take a message with it). Prints, per pool/broker/victim, the rounds,
wedged and lost rounds, and p50/max in seconds.

The tasks are `fleet.tasks.sync_cluster` for clusters that do not exist (a few milliseconds of
real work against the database each); nothing outside the temp folder and the chosen Redis
database's own queue is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BATCH = 30  # tasks queued each round, so the kill lands while tasks run
sys.path.insert(0, str(ROOT))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped counts as gone)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() or ["Z"])[0] == "Z"
    except OSError:
        return True


class Worker:
    """One worker, restarted when its main process dies; every start appends to one log."""

    def __init__(self, *, pool: str, env: dict, queue: str, log: Path):
        self.pool, self.env, self.queue, self.log = pool, env, queue, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        ready_before = self.log.read_text().count("ready.") if self.log.exists() else 0
        # The pool through config/celery.py's setting: Celery reads an explicit `--pool prefork` as "the
        # default" and would run the app's default (threads) instead.
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--queues",
            self.queue,
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{self.queue}@localhost",
        ]
        self.env = {**self.env, "SCALEDECK_WORKER_POOL": self.pool}
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while self.log.read_text().count("ready.") <= ready_before:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"worker did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def supervise(self) -> None:
        if self.proc.poll() is not None:
            self.kill_group()
            self.start()

    def kill_group(self) -> None:
        # This worker's own session: a killed main process's leftovers (pool children, embedded beat).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def run(pool: str, broker: str, victim: str, rounds: int, wedged_after: float):
    """(seconds to the first task done after the kill, seconds to the task sent after it, wedged rounds,
    rounds whose task was lost while the worker went on working)."""
    data = Path(tempfile.mkdtemp(prefix="scaledeck-bench-workers-"))
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "SCALEDECK_DATA_DIR": str(data),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    env.pop("DATABASE_URL", None)  # a scratch SQLite file in the temp folder
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({k: env[k] for k in ("CELERY_BROKER_URL", "SCALEDECK_DATA_DIR", "CELERY_TASK_DEFAULT_QUEUE")})
    from kombu import pools

    from config.celery import app

    app.conf.broker_url = broker
    if broker.startswith("filesystem://"):
        folder = str(data / "broker" / "queue")
        app.conf.broker_transport_options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": str(data / "broker" / "control"),
            "store_processed": False,
        }
    app.conf.task_default_queue = queue
    # Drop the connection pools cached for the previous broker (kombu keys them globally).
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None

    worker = Worker(pool=pool, env=env, queue=queue, log=data / "worker.log")
    worker.start()
    times: list[float] = []
    resumed: list[float] = []
    wedged = lost = 0
    try:
        for round_no in range(rounds):
            for n in range(BATCH):
                app.send_task("fleet.tasks.sync_cluster", args=(10_000_000 + n,), queue=queue)
            time.sleep(random.uniform(0.05, 0.4))
            main = worker.proc.pid
            kids = children_of(main) if victim == "child" else []
            seen = len(worker.log.read_text())
            victim_pid = random.choice(kids) if kids else main
            os.kill(victim_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            # Send the marker once the victim is dead: a Redis BRPOP still open in a dying process can
            # take a message with it (kombu registers it as unacked only after the pop), which would
            # be a lost message, not a wedged worker. (ScaleDeck's reconciler re-sends lost actions.)
            while not gone(victim_pid) and worker.proc.poll() is None:
                time.sleep(0.01)
            marker = 20_000_000 + round_no
            app.send_task("fleet.tasks.sync_cluster", args=(marker,), queue=queue)
            first = None
            while time.monotonic() - killed_at < wedged_after:
                worker.supervise()
                text = worker.log.read_text()
                if first is None and "succeeded in" in text[seen:]:
                    first = time.monotonic() - killed_at
                if f"cluster {marker} no longer exists" in text:
                    resumed.append(first if first is not None else time.monotonic() - killed_at)
                    times.append(time.monotonic() - killed_at)
                    break
                time.sleep(0.1)
            else:
                # Alive but the marker never came: lost (a dying Redis BRPOP took it), or wedged?
                probe = 30_000_000 + round_no
                app.send_task("fleet.tasks.sync_cluster", args=(probe,), queue=queue)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and f"cluster {probe} no longer exists" not in worker.log.read_text():
                    time.sleep(0.1)
                if f"cluster {probe} no longer exists" in worker.log.read_text():
                    lost += 1
                else:
                    wedged += 1
                    worker.kill_group()  # a human's restart, so the next round starts clean
                    worker.start()
    finally:
        worker.kill_group()
    return resumed, times, wedged, lost


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} / {max(values):6.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pools", default="threads,prefork,solo")
    parser.add_argument("--brokers", default="redis,filesystem")
    parser.add_argument("--redis", default=os.environ.get("SCALEDECK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--wedged", type=float, default=60.0, help="seconds after which a round counts as wedged")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    print(
        f"{'pool':<8} {'broker':<11} {'killed':<6} {'rounds':>6} {'wedged':>6} {'lost':>4}   "
        "first task done after the kill: p50/max s   task sent after the kill: p50/max s"
    )
    for broker_name in args.brokers.split(","):
        broker = args.redis if broker_name == "redis" else "filesystem://localhost/"
        if broker_name == "redis":
            parsed = urlparse(broker)
            import socket

            try:
                socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1).close()
            except OSError:
                print(f"redis: not reachable at {broker}; skipped")
                continue
        for pool in args.pools.split(","):
            for victim in ("child", "main") if pool == "prefork" else ("main",):
                resumed, times, wedged, lost = run(pool, broker, victim, args.rounds, args.wedged)
                print(
                    f"{pool:<8} {broker_name:<11} {victim:<6} {args.rounds:>6} {wedged:>6} {lost:>4}   "
                    f"{spread(resumed):>40}   {spread(times):>30}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
