"""Fixtures for the pure simulator tests: no Django, no database, no wall clock."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulator import demo_world

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)  # a Wednesday, 08:00 in New York
# Ten minutes of the Azure LLM inference trace, shipped with the tests (license and attribution beside it).
AZURE_TRACE_SAMPLE = Path(__file__).resolve().parent / "data" / "AzureLLMInferenceTrace_conv_first_10_minutes.csv"


# The shared tests/conftest.py has autouse fixtures that need pytest-django's `settings`
# (cache clearing, eager Celery). Nothing here touches Django, so shadow them: these tests
# then also run with `-p no:django`.
@pytest.fixture(autouse=True)
def _isolated_cache():
    yield


@pytest.fixture(autouse=True)
def _eager_celery():
    yield


@pytest.fixture
def now():
    return NOON


@pytest.fixture
def demo():
    """The demo world with a short warm-up (the full day takes about a second and a half)."""
    return demo_world(seed=7, now=NOON, warmup_hours=0.25)


@pytest.fixture
def azure_trace() -> Path:
    return AZURE_TRACE_SAMPLE
