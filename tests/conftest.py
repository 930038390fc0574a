"""Shared fixtures. Service fixtures live beside the code that starts them and are imported here."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.services import missing_service, tcp_open

ROOT = Path(__file__).resolve().parent.parent

from tests.browser_fixtures import browser, demo  # noqa: E402,F401 - Playwright + Chromium

try:  # the fake Kubernetes API over HTTP
    from tests.fakekube.fixtures import *  # noqa: F403
except ImportError as exc:  # pragma: no cover - only while the package is being written
    if "tests.fakekube" not in str(exc):
        raise
try:  # a real Prometheus scraping vLLM/DCGM exposition text
    from tests.metrics.fixtures import *  # noqa: F403
except ImportError as exc:  # pragma: no cover
    if "tests.metrics" not in str(exc):
        raise


@pytest.fixture(scope="session", autouse=True)
def _secrets_readable_from_test_folders(tmp_path_factory):
    """Tests write kubeconfigs and token files under their tmp_path: let ScaleDeck read secrets
    from there (fleet/secret_files.py), in this process and in the workers tests start."""
    from django.conf import settings

    base = str(tmp_path_factory.getbasetemp())
    extra = [d for d in os.environ.get("SCALEDECK_SECRET_DIRS", "").split(",") if d]
    os.environ["SCALEDECK_SECRET_DIRS"] = ",".join([*extra, base])
    settings.SCALEDECK_SECRET_DIRS = [*settings.SCALEDECK_SECRET_DIRS, base]


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Every test starts with an empty cache (metrics are cached per cluster)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Unit tests run tasks inline; the integration tests below use a real worker instead."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


REDIS_URL = os.environ.get("SCALEDECK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    from urllib.parse import urlparse

    parsed = urlparse(REDIS_URL)
    if not tcp_open(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


# Each test run has its own queue on the shared Redis, so two runs on one machine (or a run and a
# leftover worker) never take each other's tasks.
TEST_QUEUE = f"scaledeck-test-{os.getpid()}"


def database_url_for_subprocess() -> str:
    """The test database as a DATABASE_URL, so a worker process sees what the test wrote."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        name = s["NAME"]
        if name in (":memory:", "") or "mode=memory" in str(name):
            pytest.fail("the SQLite test database must be a file for worker processes (see settings TEST NAME)")
        return f"sqlite:///{name}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgresql://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def celery_worker_process(redis_url, transactional_db, tmp_path, settings):
    """A real `celery -A config worker` on real Redis, using the test database. Yields the broker URL."""
    from config.celery import app

    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": database_url_for_subprocess(),
        "SCALEDECK_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_TASK_DEFAULT_QUEUE": TEST_QUEUE,
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--hostname", f"test-{os.getpid()}@localhost",
         "--queues", TEST_QUEUE],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "ready" in (tmp_path / "worker.log").read_text():
            break
        if proc.poll() is not None:
            pytest.fail("celery worker exited:\n" + (tmp_path / "worker.log").read_text()[-3000:])
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("celery worker did not become ready in 30 s")
    old = (app.conf.broker_url, app.conf.task_always_eager, app.conf.task_default_queue)
    _use_broker(app, redis_url)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = TEST_QUEUE
    try:
        yield redis_url
    finally:
        _use_broker(app, old[0])
        app.conf.task_always_eager, app.conf.task_default_queue = old[1], old[2]
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _use_broker(app, url: str) -> None:
    """Point this process's Celery app at another broker: drop its cached connection pools."""
    from kombu import pools

    pools.reset()  # kombu caches pools globally, keyed by connection
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


def worker_log(tmp_path) -> str:
    return (tmp_path / "worker.log").read_text()
