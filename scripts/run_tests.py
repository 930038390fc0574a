"""`make test`: the whole suite on SQLite, then what depends on the database engine on PostgreSQL.

The PostgreSQL run takes the tests marked `db_engine` (claims by conditional UPDATE, row locks,
unique-constraint races, JSON fields, Decimal sums, time-zone truncation, raw SQL, data migrations,
real worker processes: see DB_ENGINE_TESTS in tests/conftest.py). Everything else behaves the same
on both engines and runs once: the whole suite twice took more than ten minutes on a busy 2-core
machine.

SCALEDECK_TEST_POSTGRES_URL names the server (default postgresql://postgres@127.0.0.1:5432/scaledeck;
pytest-django creates and drops `test_scaledeck` on it). With SCALEDECK_REQUIRE_SERVICES=1 (CI)
a missing PostgreSQL is a failure, not a skip. Extra arguments go to pytest (both runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlparse

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/scaledeck"
# Browser and Prometheus tests do not depend on the database engine, even where a module is marked.
POSTGRES_SELECTION = "db_engine and not browser and not prometheus"
NO_TESTS_SELECTED = 5  # pytest's exit code


def postgres_reachable(url: str) -> str | None:
    """None when we can connect, else the reason."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    parsed = urlparse(url)
    try:
        with psycopg.connect(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or None,
            dbname="postgres",
            connect_timeout=3,
        ):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def without_password(url: str) -> str:
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()


def run(label: str, command: list[str], env: dict[str, str]) -> int:
    print(f"== {label} ==", flush=True)
    started = time.monotonic()
    rc = subprocess.call(command, env=env)
    outcome = {0: "passed", NO_TESTS_SELECTED: "no test selected"}.get(rc, f"FAILED (exit {rc})")
    print(f"== {label}: {outcome} in {time.monotonic() - started:.0f} s ==", flush=True)
    return rc


def parallel_args() -> list[str]:
    """Run tests in SCALEDECK_TEST_WORKERS processes (default 2, one per core of the machines we
    run on): many tests wait on a real worker, Prometheus or Chromium, and the other process uses
    the core meanwhile. Every service fixture takes its own free port, queue and database, so the
    processes never share state. 1 (or no pytest-xdist) runs everything in this process."""
    workers = os.environ.get("SCALEDECK_TEST_WORKERS", "2")
    try:
        import xdist  # noqa: F401
    except ImportError:
        return []
    return [] if workers in ("", "0", "1") else ["-n", workers]


def main() -> int:
    args = [*parallel_args(), *sys.argv[1:]]
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    sqlite_rc = run("tests on SQLite", [python, "-m", "pytest", *args], env)

    pg_url = os.environ.get("SCALEDECK_TEST_POSTGRES_URL", DEFAULT_PG)
    reason = postgres_reachable(pg_url)
    required = os.environ.get("SCALEDECK_REQUIRE_SERVICES") == "1"
    if reason:
        message = f"PostgreSQL at {without_password(pg_url)} is not reachable ({reason})"
        if required:
            print(f"FAILED: {message}; SCALEDECK_REQUIRE_SERVICES=1 requires it", flush=True)
            return 1
        print(f"SKIPPED the PostgreSQL run: {message}", flush=True)
        return sqlite_rc
    pg_rc = run(
        f"database-engine tests on PostgreSQL ({without_password(pg_url)})",
        [python, "-m", "pytest", "-m", POSTGRES_SELECTION, *args],
        {**env, "DATABASE_URL": pg_url},
    )
    # Extra arguments naming other tests leave no db_engine test to run: nothing failed.
    return sqlite_rc or (0 if pg_rc == NO_TESTS_SELECTED else pg_rc)


if __name__ == "__main__":
    sys.exit(main())
