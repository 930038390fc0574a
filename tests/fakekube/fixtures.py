"""Pytest fixtures for the fake Kubernetes API (imported into tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakekube.server import FakeKubeApi

__all__ = ["fake_kube", "fake_kubeconfig"]


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeApi]:
    """A started, empty FakeKubeApi; load objects with `fake_kube.load(...)`."""
    api = FakeKubeApi()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def fake_kubeconfig(fake_kube: FakeKubeApi, tmp_path: Path) -> Path:
    """A kubeconfig (context "fake", the server's token) pointing at `fake_kube`."""
    return fake_kube.kubeconfig(tmp_path / "kubeconfig")
