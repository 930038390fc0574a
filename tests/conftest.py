"""Shared fixtures. Service fixtures live beside the code that starts them and are imported here."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
def _generous_rate_limits(settings):
    """API and sign-in limits out of the way of tests that are about something else; the tests of
    the limits themselves (tests/accounts/test_throttles.py) set low ones."""
    settings.SCALEDECK_THROTTLE_SCALE = settings.SCALEDECK_THROTTLE_WRITE = "100000/min"
    settings.SCALEDECK_THROTTLE_READ = "100000/min"
    settings.SCALEDECK_LOGIN_MAX_FAILURES = 1000


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
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{os.getpid()}@localhost",
            "--queues",
            TEST_QUEUE,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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
    try:
        with tasks_sent_to(redis_url):
            yield redis_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def tasks_sent_to(broker_url: str) -> Iterator[None]:
    """Within the block this process sends tasks (not eagerly) through `broker_url`, on this run's queue."""
    from config.celery import app

    old = (app.conf.broker_url, app.conf.task_always_eager, app.conf.task_default_queue)
    _use_broker(app, broker_url)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = TEST_QUEUE
    try:
        yield
    finally:
        _use_broker(app, old[0])
        app.conf.task_always_eager, app.conf.task_default_queue = old[1], old[2]


def _use_broker(app, url: str) -> None:
    """Point this process's Celery app at another broker: drop its cached connection pools."""
    from kombu import pools

    pools.reset()  # kombu caches pools globally, keyed by connection
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


def worker_log(tmp_path) -> str:
    return (tmp_path / "worker.log").read_text()


# --------------------------------------------------------------------------- the PostgreSQL run
# Tests whose outcome can depend on the database engine: claims by conditional UPDATE, row locks,
# unique-constraint races, JSON fields, Decimal sums, date truncation in a time zone, raw SQL, data
# migrations, and real worker processes sharing the database. `make test` runs everything on SQLite,
# then only these again on PostgreSQL (scripts/run_tests.py). A new test of that kind:
# `@pytest.mark.db_engine`, or list it here (a module, or `module::test` for part of a slow module).
DB_ENGINE_TESTS = {
    "tests/acceptance/test_issue5_scaling.py",  # 200 concurrent requests on one idempotency key, ticks racing
    "tests/acceptance/test_issue5_schedules.py",  # pre-scale firings and overrides claimed once, conflicts, retries
    "tests/acceptance/test_issue6_costs.py",  # costs summed in Decimal over exact windows, through the API
    "tests/costing/test_api.py",
    # The backfill's watermark row lock and bulk inserts (not the day-long demo seed: 30 s on PostgreSQL).
    "tests/costing/test_backfill.py::test_it_bills_the_history_to_the_cent_of_an_independent_sum",
    "tests/costing/test_backfill.py::test_it_ends_exactly_where_live_accrual_begins",
    "tests/costing/test_backfill.py::test_it_sets_the_watermark_when_nothing_was_accrued_yet",
    "tests/costing/test_backfill.py::test_it_is_idempotent",
    "tests/costing/test_migrations.py",
    "tests/costing/test_selectors.py::test_it_prices_a_deployment_by_its_running_pods",
    "tests/costing/test_selectors.py::test_it_prices_a_million_tokens_from_the_last_day",
    "tests/costing/test_selectors.py::test_it_integrates_exactly_over_a_window_that_cuts_hour_buckets",  # TruncHour
    "tests/costing/test_selectors.py::test_it_ranks_idle_spenders_including_unallocated_gpus",
    "tests/costing/test_selectors.py::test_it_leaves_hours_with_nothing_accrued_as_gaps_not_zeros",
    "tests/costing/test_selectors.py::test_it_leaves_a_group_with_no_price_as_a_gap",
    "tests/costing/test_services_accrual.py::test_it_only_sets_the_watermark_on_the_first_call",
    "tests/costing/test_services_accrual.py::test_it_accrues_a_simulated_day_to_the_hand_computed_cent",  # Decimal
    "tests/costing/test_services_accrual.py::test_it_accrues_nothing_twice_for_a_duplicate_call",
    "tests/costing/test_services_accrual.py::test_it_walks_away_when_another_worker_claimed_the_span",
    "tests/costing/test_services_accrual.py::test_it_splits_the_interval_where_a_price_changes",
    "tests/costing/test_services_accrual.py::test_it_writes_a_bounded_number_of_statements_per_accrual",
    "tests/fleet/test_replica_history.py",
    "tests/fleet/test_selectors.py",
    "tests/fleet/test_sync.py",  # bulk upserts, "gone" marking by conditional UPDATE
    "tests/fleet/test_watch_lease.py",  # a lease taken by conditional UPDATE
    "tests/integration/test_celery_worker.py",  # a real worker process on the same database
    "tests/integration/test_scale_through_worker.py",
    "tests/ops/test_endpoints.py",  # readiness runs raw SQL
    "tests/scaling/test_api.py",  # JSON request bodies stored in JSON fields, Idempotency-Key
    "tests/scaling/test_services_actions.py",  # idempotency by unique constraint
    "tests/scaling/test_services_crash.py",  # a worker dead mid-action: claims taken over by conditional UPDATE
    "tests/scaling/test_services_execution.py",  # claims, select_for_update
    "tests/scaling/test_services_in_flight.py",  # actions in flight on one object, quota requests
    "tests/scaling/test_services_overrides.py",
    "tests/scaling/test_services_prescale.py",  # one claim per firing
    "tests/scaling/test_tick_command.py",
    "tests/scaling/test_write_intent.py",
}


def pytest_collection_modifyitems(config, items):
    missing = sorted({t.split("::")[0] for t in DB_ENGINE_TESTS if not (ROOT / t.split("::")[0]).is_file()})
    if missing:  # renamed or moved: its tests would silently leave the PostgreSQL run
        raise pytest.UsageError(f"tests/conftest.py DB_ENGINE_TESTS names missing files: {', '.join(missing)}")
    for item in items:
        module, _, name = item.nodeid.partition("::")
        if module in DB_ENGINE_TESTS or f"{module}::{name.split('[')[0]}" in DB_ENGINE_TESTS:
            item.add_marker(pytest.mark.db_engine)
