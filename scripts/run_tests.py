"""`make test`: the whole suite on SQLite, then again on PostgreSQL when one is reachable.

SCALEDECK_TEST_POSTGRES_URL names the server (default postgresql://postgres@127.0.0.1:5432/scaledeck;
pytest-django creates and drops `test_scaledeck` on it). With SCALEDECK_REQUIRE_SERVICES=1 (CI)
a missing PostgreSQL is a failure, not a skip. Extra arguments go to pytest (both runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/scaledeck"


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


def main() -> int:
    args = sys.argv[1:]
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    print("== tests on SQLite ==", flush=True)
    sqlite_rc = subprocess.call([python, "-m", "pytest", *args], env=env)

    pg_url = os.environ.get("SCALEDECK_TEST_POSTGRES_URL", DEFAULT_PG)
    reason = postgres_reachable(pg_url)
    required = os.environ.get("SCALEDECK_REQUIRE_SERVICES") == "1"
    if reason:
        message = f"PostgreSQL at {pg_url} is not reachable ({reason})"
        if required:
            print(f"FAILED: {message}; SCALEDECK_REQUIRE_SERVICES=1 requires it", flush=True)
            return 1
        print(f"SKIPPED the PostgreSQL run: {message}", flush=True)
        return sqlite_rc
    print(f"== tests on PostgreSQL ({pg_url}) ==", flush=True)
    # Browser and Prometheus tests do not depend on the database engine: once is enough.
    pg_rc = subprocess.call(
        [python, "-m", "pytest", "-m", "not browser and not prometheus", *args],
        env={**env, "DATABASE_URL": pg_url},
    )
    return sqlite_rc or pg_rc


if __name__ == "__main__":
    sys.exit(main())
