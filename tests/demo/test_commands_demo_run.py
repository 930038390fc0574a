"""`make demo`'s runner restarts a worker (or beat) that dies, and stops only for the web server or a crash loop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from demo.management.commands.demo_run import RESTART_LIMIT, Child, supervise_once


@pytest.fixture
def children():
    started: list[Child] = []

    def make(name, *, restart=True):
        child = Child(name, ["sleep", "60"], restart=restart)
        child.start()
        started.append(child)
        return child

    yield make
    for child in started:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def killed(child: Child) -> int:
    pid = child.proc.pid
    os.kill(pid, signal.SIGKILL)
    child.proc.wait()
    return pid


def test_it_starts_a_killed_worker_again(children):
    worker, web = children("the worker"), children("the web server", restart=False)
    old = killed(worker)
    said = []

    assert supervise_once([web, worker], now=100.0, log=said.append) is None

    assert worker.proc.pid != old and worker.proc.poll() is None
    assert said == ["the worker exited with -9; starting it again"]


def test_it_clears_what_a_killed_worker_left_in_its_session(tmp_path):
    # A worker that started a process of its own (as a prefork pool's child, or an embedded beat).
    pid_file = tmp_path / "leftover.pid"
    worker = Child("the worker", ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"])
    worker.start()
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the worker did not start its leftover"
        time.sleep(0.02)
    leftover = int(pid_file.read_text())
    killed(worker)

    supervise_once([worker], now=100.0, log=lambda _: None)

    try:
        deadline = time.monotonic() + 5
        while alive(leftover):
            assert time.monotonic() < deadline, "the killed worker's leftover is still running"
            time.sleep(0.02)
    finally:
        worker.proc.kill()  # the restarted one, and the process it started in turn
        worker.proc.wait()
        worker.clear_leftovers()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_it_stops_the_demo_when_the_web_server_exits(children):
    web = children("the web server", restart=False)
    killed(web)

    assert supervise_once([web], now=100.0, log=lambda _: None) == "the web server exited with -9; stopping the demo"


def test_it_stops_a_worker_that_keeps_dying(children):
    worker = children("the worker")
    for n in range(RESTART_LIMIT):
        killed(worker)
        assert supervise_once([worker], now=100.0 + n, log=lambda _: None) is None
    killed(worker)

    why = supervise_once([worker], now=110.0, log=lambda _: None)

    assert why == f"the worker exited {RESTART_LIMIT + 1} times within 60 s; stopping the demo"
