from __future__ import annotations

from collections.abc import Sequence

import pytest

from fleet.backends.base import BackendError, DeploymentMetrics, DeploymentRef


class FakeMetrics:
    """A metrics backend answering fixed values per deployment name (and recording what it was asked)."""

    def __init__(
        self,
        by_name: dict[str, DeploymentMetrics] | None = None,
        default: DeploymentMetrics | None = None,
        error: Exception | None = None,
    ):
        self.by_name = by_name or {}
        self.default = default or DeploymentMetrics(unavailable_reason="no metrics in this test")
        self.error = error
        self.asked: list[tuple[DeploymentRef, ...]] = []
        self.last_error: BackendError | None = None

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[tuple[str, str], DeploymentMetrics]:
        self.asked.append(tuple(refs))
        if self.error is not None:
            raise self.error
        return {(r.namespace, r.name): self.by_name.get(r.name, self.default) for r in refs}

    # Costing never draws charts: these answer as a source without such series would.
    def deployment_series(self, *args, **kwargs):  # pragma: no cover
        raise BackendError("this test's metrics source has no range series")

    def gpu_utilization(self, *args, **kwargs):  # pragma: no cover
        raise BackendError("this test's metrics source has no GPU series")

    def token_increase(self, *args, **kwargs):
        raise BackendError("this test's metrics source counts no tokens")

    def deployment_history(self, *args, **kwargs):  # pragma: no cover
        raise BackendError("this test's metrics source has no history")

    def close(self) -> None:
        """Nothing to close."""


def busy(utilization: float = 0.8, generation: float = 100.0, prompt: float = 50.0) -> DeploymentMetrics:
    return DeploymentMetrics(
        gpu_utilization=utilization, generation_tokens_per_second=generation, prompt_tokens_per_second=prompt
    )


@pytest.fixture
def no_metrics():
    return FakeMetrics()
