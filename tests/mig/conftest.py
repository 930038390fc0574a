"""The fleet tests' users, clients and fake metrics backend, shared with the MIG tests."""

from tests.fleet.conftest import (  # noqa: F401
    FakeMetricsBackend,
    api,
    fake_metrics,
    operator,
    operator_client,
    viewer,
    viewer_client,
)
