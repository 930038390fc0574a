"""The liveness checks of the Celery worker and beat: real processes write heartbeats, and the
probe command fails once they stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ops import heartbeat
from tests.conftest import ROOT
from tests.services import free_port

PROBE = [sys.executable, "-m", "ops.heartbeat"]


def wait_for_file(path: Path, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited {process.returncode}: {process.stdout.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {path.name} after {seconds} s")


@pytest.fixture
def celery_env(tmp_path):
    """A data dir of its own: its own file broker, metrics folder and heartbeats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PROMETHEUS_", "SCALEDECK_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SCALEDECK_DATA_DIR=str(tmp_path),
        SCALEDECK_HEARTBEAT_DIR=str(tmp_path),
        CELERY_TASK_DEFAULT_QUEUE=f"heartbeat-test-{os.getpid()}",
    )
    return env


def run(args, env) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_it_reports_a_running_worker_alive_and_serves_its_counters(celery_env, tmp_path):
    port = free_port()
    worker = run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "1"],
        {**celery_env, "SCALEDECK_WORKER_METRICS_PORT": str(port), "SCALEDECK_LOG_FORMAT": "json"},
    )
    try:
        wait_for_file(tmp_path / "worker.heartbeat", worker)
        probe = subprocess.run(
            [*PROBE, "worker", "--max-age", "60"], env=celery_env, capture_output=True, text=True, timeout=30
        )
        assert probe.returncode == 0, probe.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:  # noqa: S310
            scraped = answer.read().decode()
        assert 'scaledeck_prescale_firings_total{outcome="on_time"}' in scraped
    finally:
        stop(worker)
    # The worker logs through ScaleDeck's formatters, not Celery's own.
    lines = [json.loads(line) for line in worker.stdout.read().splitlines() if line.startswith("{")]
    assert any(line["logger"].startswith("celery") and line["level"] == "INFO" for line in lines), lines
    assert any(line["logger"] == "ops.celery_signals" and "metrics on" in line["message"] for line in lines)


def test_it_reports_beat_alive_while_it_ticks_and_dead_once_it_stops(celery_env, tmp_path):
    beat = run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--scheduler",
            "ops.beat:HeartbeatScheduler",
            "--schedule",
            str(tmp_path / "schedule"),
        ],
        celery_env,
    )
    try:
        wait_for_file(tmp_path / "beat.heartbeat", beat)
        first = heartbeat.age_seconds(tmp_path / "beat.heartbeat")
        alive = subprocess.run(
            [*PROBE, "beat", "--max-age", "30"], env=celery_env, capture_output=True, text=True, timeout=30
        )
        assert alive.returncode == 0, alive.stderr
        assert first is not None and first < 30
    finally:
        stop(beat)
    time.sleep(1.2)
    dead = subprocess.run(
        [*PROBE, "beat", "--max-age", "1"], env=celery_env, capture_output=True, text=True, timeout=30
    )
    assert dead.returncode == 1
    assert "last heartbeat" in dead.stderr


def test_it_fails_the_probe_when_there_is_no_heartbeat_at_all(tmp_path):
    result = subprocess.run([*PROBE, "worker", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"no heartbeat at {tmp_path / 'worker.heartbeat'}" in result.stderr
