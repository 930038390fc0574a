"""Real services for integration tests: found, or skipped with the reason (failed in CI).

With SCALEDECK_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the test instead
of skipping it, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRED = os.environ.get("SCALEDECK_REQUIRE_SERVICES") == "1"


def missing_service(reason: str):
    """Skip locally, fail in CI."""
    if REQUIRED:
        pytest.fail(f"{reason} (SCALEDECK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
